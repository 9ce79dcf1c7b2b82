"""Where the kill loop kills (named crash points and random times, seeded), where each kill landed, and
the tally of kills and re-runs."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kill_loop_harness import PROFILES, Run, by_profile

from pipeline.core.crashpoints import POINTS


@dataclass(frozen=True)
class KillPoint:
    """A named point (``point`` reached for the ``n``-th time in ``profile``) or a random time."""

    kind: str  # "named" | "random"
    profile: str | None = None
    point: str | None = None
    n: int | None = None
    delay_s: float | None = None

    def label(self) -> str:
        if self.kind == "named":
            return f"{self.point}:{self.n} in {self.profile}"
        return f"random, {self.delay_s:.2f} s after the first crash point"


def plan_rounds(
    counts: Mapping[str, Mapping[str, int]], window: tuple[float, float], n_points: int, seed: int
) -> list[list[KillPoint]]:
    """Rounds of kills, seeded: every named point at least once, about a quarter random times.

    A round holds named kills in distinct profiles, in run order (each kill run starts at its
    profile, so ``n`` counts within that profile), or one random-time kill of a whole run.
    """
    rng = random.Random(seed)
    n_named = max(len(POINTS), n_points - n_points // 4)
    names = [POINTS[i % len(POINTS)] for i in range(n_named)]
    rng.shuffle(names)
    rounds: list[list[KillPoint]] = []
    pending = list(names)
    while pending:
        rnd: dict[str, KillPoint] = {}
        for point in list(pending):
            free = [p for p in PROFILES if p not in rnd and counts.get(p, {}).get(point, 0) > 0]
            if free:
                prof = rng.choice(free)
                rnd[prof] = KillPoint("named", prof, point, rng.randint(1, counts[prof][point]))
                pending.remove(point)
            if len(rnd) == len(PROFILES):
                break
        if not rnd:
            raise ValueError(f"no profile of the reference run reached {pending}")
        rounds.append([rnd[p] for p in PROFILES if p in rnd])
    lo, hi = window
    rounds += [
        [KillPoint("random", delay_s=round(rng.uniform(lo, hi), 3))] for _ in range(n_points - n_named)
    ]
    rng.shuffle(rounds)
    return rounds


def phase_of(kp: KillPoint, run: Run) -> str:
    """Where a kill landed: the named point, or the last point a randomly killed run passed."""
    if kp.kind == "named":
        return f"at {kp.point}"
    if not run.killed:
        return "not killed (the run ended first)"
    if not run.trace:
        return "after start-up, before the first crash point"
    parts = by_profile(run.trace, run.profiles)
    return f"after {run.trace[-1][0]} in {run.profiles[len(parts) - 1]}"


@dataclass
class LoopResult:
    kills: list[dict[str, Any]] = field(default_factory=list)
    reruns: list[dict[str, Any]] = field(default_factory=list)
    concurrent: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        killed = [k for k in self.kills if k["killed"]]
        return {
            "points_killed": len(killed),
            "kill_runs": len(self.kills),
            "random_runs_that_ended_before_the_kill": sum(1 for k in self.kills if not k["killed"]),
            "named_points_killed": sum(1 for k in killed if k["kind"] == "named"),
            "random_points_killed": sum(1 for k in killed if k["kind"] == "random"),
            "named_points_covered": sorted({k["point"] for k in killed if k["kind"] == "named"}),
            "killed_by_phase": dict(sorted(Counter(k["phase"] for k in killed).items())),
            "corrupt_after_kill": sum(1 for k in self.kills if k["corrupt_after_kill"]),
            "reruns": len(self.reruns),
            "reruns_ok": sum(1 for r in self.reruns if r["returncode"] == 0),
            "verify_clean": sum(1 for r in self.reruns for v in r["verify"].values() if v["ok"]),
            "verify_checks": sum(len(r["verify"]) for r in self.reruns),
            "stores_equal": sum(
                1 for r in self.reruns for c in r["compare"].values() if not c["differences"]
            ),
            "records_lost": sum(c["lost"] for r in self.reruns for c in r["compare"].values()),
            "records_duplicated": sum(c["duplicated"] for r in self.reruns for c in r["compare"].values()),
            "records_extra": sum(c["extra"] for r in self.reruns for c in r["compare"].values()),
            # harmless leftovers (temporary files of killed writes) still there after the re-run
            "debris_after_rerun": sorted(
                {d for r in self.reruns for v in r["verify"].values() for d in v["debris"]}
            ),
        }
