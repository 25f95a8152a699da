"""`run`, the main job: fine-tune the teacher, distil (general then task), evaluate, report. The
pipeline of methods, above them all. (Not a folder named `run`: `bertcompress.run` is the verb.)"""
