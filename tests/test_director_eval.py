"""`evaluate-directors` and `dataset generate` end to end, through their worker pools; the pool itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sidecar.operations.recording import read_recording
from sidecar.serving.worker_pool import report, run_pool
from sim.datagen import GenerateConfig, generate
from sim.director_eval import (
    across_populations,
    decile_ratios,
    evaluate_directors,
    evaluate_seeds,
    markdown,
    over_seeds,
    populations_markdown,
    seeds_markdown,
    seeds_png,
)
from sim.offline import SessionSummary


def _square_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"task {x} failed")
    report(1)
    return x * x


def test_worker_pool_returns_results_in_task_order_and_raises_a_task_failure() -> None:
    assert run_pool(_square_or_fail, [3, 1, 2], 2, 3, "squares", "task") == [9, 1, 4]
    # A failed task never reports its progress: the pool must raise, not wait for it.
    with pytest.raises(ValueError, match="task -1 failed"):
        run_pool(_square_or_fail, [1, -1, 2], 2, 3, "squares", "task")


def test_evaluate_directors_plays_every_policy_on_the_same_players() -> None:
    report = evaluate_directors(
        players=6,
        policies=("static:0.2", "static:0.5", "static:0.8", "rubber_band", "learned"),
        max_seconds=60.0,
        workers=2,
        seed=5,
    )
    table = {t["policy"]: t for t in report["table"]}
    assert set(table) == {"static:0.2", "static:0.5", "static:0.8", "rubber_band", "learned"}
    assert all(t["sessions"] == 6 for t in table.values())
    # The same players at a harder fixed level die more often.
    assert table["static:0.8"]["deaths_per_min"] > table["static:0.2"]["deaths_per_min"]
    assert 0.75 < table["static:0.8"]["mean_difficulty"] <= 0.8  # ramps from the default within the rate limits
    c = report["comparison"]
    assert c["candidate"] == "learned" and c["best_static"] in {"static:0.2", "static:0.5", "static:0.8"}
    assert "vs_rubber_band" in c and len(c["decile_ratio_vs_designer_default"]) == 10
    assert len(c["decile_ratio_ci95_vs_designer_default"]) == 10 and 1 <= c["worst_decile"] <= 10
    assert set(c["deciles_vs_designer_default"]) == set(table) - {"static:0.5"}
    same = c["deciles_vs_designer_default"]["learned"]["ci95"], c["decile_ratio_ci95_vs_designer_default"]
    assert np.array_equal(*map(np.array, same), equal_nan=True)  # six players: most deciles are empty
    text = markdown(report)  # a 60 s cap has one minute of quit rates: the table still renders
    assert "| rubber_band |" in text and "/ – / –" in text and "beyond chance" in text


def test_directors_over_several_seeds_report_each_run_and_what_they_say_together(tmp_path: Path) -> None:
    """`evaluate-directors --seeds`: a run per seed (other players each time), each the run that seed
    alone gives, and each director's mean per seed and over them, with the candidate against each seed's
    best fixed level and a t-interval over the seeds."""
    policies = ("static:0.3", "static:0.7", "portfolio")
    args = (policies, 120.0, None, 2)
    reports = evaluate_seeds("default", 4, (3, 4, 5), *args)
    assert [r["seed"] for r in reports] == [3, 4, 5]
    alone = evaluate_directors("default", 4, 4, *args)
    for key in ("table", "comparison"):  # as JSON: NaN (an empty decile) equals itself there
        assert json.dumps(reports[1][key]) == json.dumps(alone[key])
    assert reports[0]["skill_difficulty"] != reports[1]["skill_difficulty"]  # other players
    summary = over_seeds(reports)
    for label in policies:
        per_seed = [next(t["mean_length_s"] for t in r["table"] if t["policy"] == label) for r in reports]
        assert summary["mean_length_s"][label] == {"per_seed": per_seed, "mean": pytest.approx(np.mean(per_seed))}
    vs = summary["vs_best_static"]
    assert summary["candidate"] == "portfolio"
    assert vs["per_seed"] == [r["comparison"]["vs_best_static"] for r in reports]
    assert vs["best_static_per_seed"] == [r["comparison"]["best_static"] for r in reports]
    lo, hi = vs["ci95"]
    assert lo <= vs["mean"] <= hi
    text = seeds_markdown(summary)
    assert "| portfolio |" in text and "| seed 3 | seed 4 | seed 5 | mean |" in text
    assert "95% interval over seeds" in text
    assert "95% interval" not in seeds_markdown(over_seeds(reports[:1]))  # one seed: no interval
    png = seeds_png(summary, tmp_path)
    assert png.name == "seeds_default.png" and png.read_bytes()[:4] == b"\x89PNG"


def test_directors_on_every_population_side_by_side(tmp_path: Path) -> None:
    """`evaluate-directors --populations`: each population's run is the run `--population` gives (its own
    players, the same seed), side by side, with the candidate against the designer's level and the best
    fixed level on each."""
    from sidecar.cli import main

    out = tmp_path / "across.json"
    policies = "static:0.5,static:0.8,portfolio"
    args = ["--players", "4", "--seed", "7", "--max-seconds", "90", "--policies", policies, "--json", str(out)]
    assert main(["evaluate-directors", "--populations", "default,tilt", *args]) == 0
    summary = json.loads(out.read_text())
    assert [r["population"] for r in summary["rows"]] == ["default", "tilt"]
    alone = evaluate_directors("tilt", 4, 7, tuple(policies.split(",")), 90.0, None, 2)
    tilt = summary["rows"][1]
    assert tilt["mean_length_s"] == {t["policy"]: t["mean_length_s"] for t in alone["table"]}
    designer, candidate = tilt["mean_length_s"]["static:0.5"], tilt["mean_length_s"]["portfolio"]
    assert tilt["vs_designer_default"] == pytest.approx(candidate / designer - 1)
    assert tilt["candidate"] == "portfolio" and tilt["vs_best_static"] == alone["comparison"]["vs_best_static"]
    # An archetype mix is one population (--population runs it), and a name must be one: refused up front.
    assert main(["evaluate-directors", "--populations", "novice=1,expert=1", *args]) == 2
    assert main(["evaluate-directors", "--populations", "default,nobody", *args]) == 2


def test_the_populations_where_a_director_is_worse_are_named() -> None:
    """Worse than the designer's level, or than the best fixed level, or a skill decile below the designer's
    level beyond chance: each names its population; none of them, no population is named."""

    def report(population: str, designer: float, fixed: float, candidate: float, below: list[int]) -> dict:
        table = [
            {"policy": "static:0.5", "mean_length_s": designer},
            {"policy": "static:0.8", "mean_length_s": fixed},
            {"policy": "portfolio", "mean_length_s": candidate},
        ]
        best = "static:0.5" if designer >= fixed else "static:0.8"
        comparison = {
            "candidate": "portfolio",
            "best_static": best,
            "vs_best_static": candidate / max(designer, fixed) - 1,
            "deciles_credibly_below_designer_default": below,
        }
        return {"population": population, "seed": 1, "players": 10, "max_seconds": 900.0, "table": table,
                "comparison": comparison}  # fmt: skip

    reports = [
        report("fine", 300.0, 320.0, 350.0, []),
        report("below_designer", 300.0, 250.0, 290.0, []),
        report("below_fixed", 300.0, 400.0, 350.0, []),
        report("a_decile", 300.0, 320.0, 350.0, [1]),
    ]
    summary = across_populations(reports)
    assert summary["worse"] == ["below_designer", "below_fixed", "a_decile"]
    text = populations_markdown(summary)
    assert "| fine | 1 | 10 | 300.0 | 320.0 | 350.0 | portfolio | +16.7% | +9.4% (static:0.8) | none |" in text
    assert "on: below_designer, below_fixed, a_decile." in text
    assert "on none of these populations" in populations_markdown(across_populations(reports[:1]))


def _sessions(
    rng: np.random.Generator, skill: np.ndarray, taste: np.ndarray, effect: np.ndarray
) -> list[SessionSummary]:
    """One session per player: its mean set by the player's own taste times the director's effect on the
    player's skill decile, spread like real sessions (about 0.7 of the mean)."""
    seconds = taste * effect[np.minimum((skill * 10).astype(int), 9)] * rng.lognormal(-0.2, 0.63, len(skill))
    return [
        SessionSummary(i, "core", float(skill[i]), "p", float(s), True, 0, 0, 0.5, 0.5, 0.5, 0.0, True)
        for i, s in enumerate(seconds)
    ]


def test_a_decile_is_below_the_designers_level_only_beyond_chance() -> None:
    """1,000 players: a director equal to the designer's level in every decile still has a worst decile
    well below 1 by chance (the plain worst-decile figure), but is almost never named below; one that
    plays the seventh decile 35% shorter is named there, and only there, in most runs."""
    rng = np.random.default_rng(3)
    worst, named, found = [], 0, 0
    for _ in range(10):
        skill, taste = rng.random(1000), rng.lognormal(5.8, 0.4, 1000)
        same = np.ones(10)
        even = decile_ratios(_sessions(rng, skill, taste, same), _sessions(rng, skill, taste, same), boot=1000)
        worst.append(min(even.ratios))
        named += len(even.below)
        assert all(lo < r < hi for r, (lo, hi) in zip(even.ratios, even.ci95, strict=True))
        hurt = same.copy()
        hurt[6] = 0.65
        found += decile_ratios(
            _sessions(rng, skill, taste, hurt), _sessions(rng, skill, taste, same), boot=1000
        ).below == [7]
    assert float(np.mean(worst)) < 0.9  # chance alone puts the smallest of ten ratios >10% below par
    assert named <= 1  # of ten runs where nothing differs
    assert found >= 7


def test_dataset_generate_records_every_session(tmp_path: Path) -> None:
    out = tmp_path / "recs"
    assert generate(GenerateConfig(out=str(out), sessions=3, seed=4, max_seconds=20.0)) == 3
    files = sorted(out.glob("*.mbrec"))
    assert len(files) == 3
    rec = read_recording(files[0])
    assert rec.header["source"] == "metabrain sim" and not rec.truncated
    frames = [r for _, r in rec.requests() if r.WhichOneof("kind") == "frame"]
    assert len(frames) >= 50 and len(list(rec.responses())) >= len(frames)
    # `--policies piecewise`: only sessions whose level is drawn at random (switch_points.py's data).
    drawn = tmp_path / "drawn"
    assert generate(GenerateConfig(out=str(drawn), sessions=2, seed=4, max_seconds=20.0, policies=("piecewise",))) == 2
    assert {read_recording(f).header["policy"] for f in drawn.glob("*.mbrec")} == {"piecewise"}


def test_a_report_written_before_its_comparison_named_a_candidate_reads_the_same() -> None:
    """Reports from 2026-11-29 say `predictive_vs_best_static`; the table reads them as today's form."""
    from sidecar.training.director_report import markdown
    from sim.director_eval import compare

    ck = Path(__file__).resolve().parent.parent / "sidecar" / "checkpoints"
    bundled = json.loads((ck / "directors_holdout.json").read_text())
    assert "NPC hints on vs off (predictive): -1.0%" in markdown(bundled)
    # The card's directors of then: no designer's level, no portfolio.
    table = [t for t in bundled["table"] if t["policy"] not in ("static:0.5", "portfolio")]
    report = {**bundled, "table": table, "comparison": compare(table)}
    old = {**report, "comparison": {"best_static": "static:0.25"}}
    for key, value in report["comparison"].items():
        if key.startswith("vs_") or key == "hints_on_vs_off":
            old["comparison"][f"predictive_{key}" if key.startswith("vs_") else key] = value
    assert markdown(old) == markdown(report)
    assert "predictive vs best static: +24.9%; vs rubber_band: +24.4%; NPC hints on vs off: -1.0%." in markdown(old)


def test_hints_on_against_off_names_the_director_it_was_measured_on() -> None:
    """The comparison is the candidate's (the portfolio where it ran); a hints-off run of another director
    still gives its on-against-off figure, named, not passed off as the candidate's."""
    from sim.director_eval import compare

    def row(policy: str, mean: float) -> dict[str, object]:
        return {"policy": policy, "mean_length_s": mean, "length_by_skill_decile": [mean] * 10}

    table = [
        row("static:0.5", 400.0),
        row("predictive", 495.0),
        row("predictive:nohints", 500.0),
        row("portfolio", 480.0),
    ]
    c = compare(table)
    assert c["candidate"] == "portfolio" and c["hints_of"] == "predictive"
    assert c["hints_on_vs_off"] == pytest.approx(-0.01)
    own = compare([*table, row("portfolio:nohints", 470.0)])
    assert own["hints_on_vs_off"] == pytest.approx(480 / 470 - 1) and "hints_of" not in own
    assert "hints_on_vs_off" not in compare(table[:2] + table[3:])


def test_the_bundled_model_card_regenerates_from_its_reports(tmp_path: Path) -> None:
    """`metabrain model-card` on the bundled checkpoint and reports gives the card that ships, its notes
    in it, and no reproduce step for a value surface it does not carry."""
    from sidecar.training.model_card import write_card

    ck = Path(__file__).resolve().parent.parent / "sidecar" / "checkpoints"
    out = tmp_path / "MODEL_CARD.md"
    notes = (ck / "MODEL_CARD_NOTES.md").read_text()
    write_card(
        str(ck / "default.pt"),
        str(ck / "eval.json"),
        [str(ck / "directors_default.json"), str(ck / "directors_holdout.json")],
        str(out),
        notes,
    )
    card = out.read_text()
    assert card == (ck / "MODEL_CARD.md").read_text(), "MODEL_CARD.md is stale: run `metabrain model-card` (README)"
    # The shipped director, on the card's own players, against the best fixed level and the designer's.
    assert "Best static: static:0.4. portfolio vs best static: +24.5%; vs rubber_band: +11.9%; worst skill" in card
    assert card.count("below the designer's level beyond chance: none") == 2  # on default and on holdout
    assert "| predictive | 501 |" in card and "| static:0.5 | 410 |" in card
    assert "--value-members 20 --out model.pt  # the surface" not in card
    for population in ("default", "holdout"):  # each table's figure, drawn beside the card from its report
        assert f"![directors on {population}](directors_{population}.png)" in card
        assert (tmp_path / f"directors_{population}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (ck / f"directors_{population}.png").exists(), "the card's figure is not bundled beside it"


def test_a_static_label_takes_a_bare_level_or_parameters() -> None:
    """`static:0.8` is the level; `static:level=0.8;retreat=0.3` names its parameters, checked as the sidecar
    checks them."""
    from sim.policy_labels import checked, parse_policy

    assert parse_policy("static:0.8").params == {"level": "0.8"}
    assert parse_policy("static").params == {"level": "0.5"}
    run = checked(parse_policy("static:level=0.8;retreat=0.3"))
    assert (run.policy, run.params) == ("static", {"level": "0.8", "retreat": "0.3"})
    with pytest.raises(ValueError, match=r"parameter retreat=2 is outside \[0, 1\]"):
        checked(parse_policy("static:level=0.8;retreat=2"))
