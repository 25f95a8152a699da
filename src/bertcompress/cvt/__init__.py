"""Cross-View Training (Clark et al. 2018): a light CNN-BiLSTM sequence tagger trained on a small
labelled budget and on unlabelled sentences (METHODS.md section 7).

    from bertcompress.cvt import CvtConfig, cvt, load_cvt, predict_tags
    folder = cvt(CvtConfig(...))
    tagger = load_cvt(folder)
    predict_tags(tagger, ["The jury said it was fine ."])
"""

from .config import CvtConfig, CvtDataConfig, CvtModelConfig, CvtUnlabelledConfig
from .export import compare_runtimes, export_cvt_onnx
from .model import CvtTagger
from .predict import predict_tags, score_tagger
from .saving import load_cvt, save_tagger
from .text import split_words, text_sentences
from .verbs import cvt

__all__ = [
    "CvtConfig",
    "CvtDataConfig",
    "CvtModelConfig",
    "CvtTagger",
    "CvtUnlabelledConfig",
    "compare_runtimes",
    "cvt",
    "export_cvt_onnx",
    "load_cvt",
    "predict_tags",
    "save_tagger",
    "score_tagger",
    "split_words",
    "text_sentences",
]
