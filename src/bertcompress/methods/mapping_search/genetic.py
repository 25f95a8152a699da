"""A small genetic algorithm over integer genomes (one gene per position, values in [low, high]).

Generation 0 is the seed genomes (e.g. the hand-made layer mappings, so the search has to beat
them) topped up with random ones. Each later generation keeps the `elite` best genomes and fills
the rest with children: two parents picked by tournament, uniform crossover, then each gene reset
to a random value with probability `mutation_rate`. With `monotone`, genomes are kept sorted
(non-decreasing), the order every hand-made layer mapping has; with `distinct` too, no two genes
share a value (strictly increasing: each student layer learns from its own teacher layer), a child
that repeats one being moved up or down to the nearest free values. With `segments` > 1 the genome
is that many equal parts (e.g. a hidden-state mapping, then an attention mapping), each kept in
order on its own.

Fitness is the expensive part, so every genome is scored once: `known` holds earlier scores (a
resumed search passes what it saved) and `on_scored` is called after each new one. Every random
choice comes from one seeded generator and depends only on scores, so a resumed search replays
the same generations and only scores what is still missing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Iterable

from bertcompress.methods.mapping_search.config import GeneticConfig

Genome = tuple[int, ...]


@dataclass
class GenerationRecord:
    generation: int
    best: Genome
    best_fitness: float
    mean_fitness: float
    population: list[Genome]
    scored_so_far: int


@dataclass
class SearchResult:
    best: Genome
    best_fitness: float
    scores: dict[Genome, float]
    history: list[GenerationRecord] = field(default_factory=list)


def genetic_search(fitness: Callable[[Genome], float], length: int, low: int, high: int, ga: GeneticConfig, *,
                   monotone: bool = True, distinct: bool = False, segments: int = 1, seeds: Iterable[Genome] = (),
                   known: dict[Genome, float] | None = None,
                   on_scored: Callable[[Genome, float], None] | None = None) -> SearchResult:
    if segments < 1 or length % segments:
        raise ValueError(f"a genome of {length} genes cannot be cut into {segments} equal segments")
    part = length // segments
    if distinct and (not monotone or part > high - low + 1):
        raise ValueError(f"distinct genes need monotone and segments of <= {high - low + 1} genes, got {part}")
    rng = random.Random(ga.seed)
    scores: dict[Genome, float] = dict(known or {})

    def ordered(g: tuple[int, ...]) -> Genome:
        return strictly_increasing(g, high) if distinct else tuple(sorted(g)) if monotone else g

    def normal(genome: Iterable[int]) -> Genome:
        g = tuple(genome)
        return sum((ordered(g[i:i + part]) for i in range(0, length, part)), ())

    def score(genome: Genome) -> float:
        if genome not in scores:
            scores[genome] = float(fitness(genome))
            if on_scored is not None:
                on_scored(genome, scores[genome])
        return scores[genome]

    def random_genome() -> Genome:
        return normal(rng.randint(low, high) for _ in range(length))

    def fill(population: list[Genome], make: Callable[[], Genome]) -> list[Genome]:
        """Add distinct genomes from `make` until full; once the space seems exhausted (many tries
        without a new genome), repeats are allowed rather than looping forever."""
        tries = 0
        while len(population) < ga.population:
            g = make()
            tries += 1
            if g not in population or tries > 50 * ga.population:
                population.append(g)
        return population

    population = fill(list(dict.fromkeys(normal(s) for s in seeds))[:ga.population], random_genome)
    history: list[GenerationRecord] = []
    for generation in range(ga.generations):
        fits = [score(g) for g in population]
        ranked = sorted(zip(population, fits), key=lambda gf: -gf[1])  # stable: ties keep population order
        history.append(GenerationRecord(generation, ranked[0][0], ranked[0][1], sum(fits) / len(fits),
                                        list(population), len(scores)))
        if generation == ga.generations - 1:
            break

        def tournament() -> Genome:
            picks = rng.sample(range(len(population)), min(ga.tournament, len(population)))
            return population[max(picks, key=lambda i: (fits[i], -i))]

        def child() -> Genome:
            a, b = tournament(), tournament()
            genes = [x if rng.random() < 0.5 else y for x, y in zip(a, b)] if rng.random() < ga.crossover_rate \
                else list(a)
            genes = [rng.randint(low, high) if rng.random() < ga.mutation_rate else x for x in genes]
            return normal(genes)

        population = fill([g for g, _ in ranked[:ga.n_elite]], child)
    best = max(scores, key=lambda g: scores[g])
    return SearchResult(best=best, best_fitness=scores[best], scores=scores, history=history)


def strictly_increasing(genome: Iterable[int], high: int) -> Genome:
    """The genome sorted, each repeated value moved up to the next free one, and the top ones then
    moved down where that passed `high`: (2, 2, 5) -> (2, 3, 5); (5, 6, 6) with high 6 -> (4, 5, 6)."""
    g = sorted(genome)
    for i in range(1, len(g)):
        g[i] = max(g[i], g[i - 1] + 1)
    for i in reversed(range(len(g))):
        g[i] = min(g[i], high if i == len(g) - 1 else g[i + 1] - 1)
    return tuple(g)
