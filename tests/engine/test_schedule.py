"""The per-step schedule (§4) as data, and its proportional scaling to other step counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.schedule import build_schedule, count_evaluations, ddim_timesteps


def test_timesteps_match_the_release() -> None:
    ts = ddim_timesteps(50)
    assert ts[0] == 981 and ts[-1] == 1 and all(a - b == 20 for a, b in zip(ts, ts[1:]))


def test_fifty_step_table_reproduces_section_4() -> None:
    rows = build_schedule("move", 50, guidance=True)
    assert [r.i for r in rows if r.ip] == list(range(10, 20))
    assert [r.i for r in rows if r.sde] == list(range(11, 20))
    assert [r.i for r in rows if r.guide] == list(range(10)) + list(range(10, 30, 2))
    assert [r.i for r in rows if r.passes == 3] == [22, 24, 26, 28]
    assert [r.i for r in rows if r.kv == "replace"] == list(range(5, 50))
    assert [r.t for r in rows if r.passes == 3] == [541, 501, 461, 421]
    assert all(r.t_prev == r.t - 20 for r in rows)


def test_evaluation_counts_at_defaults() -> None:
    # §12.1: 50 inversion passes, 50 + 8 sampling passes, 28 guidance evaluations (each a current
    # pass and two backward passes; reference features once per each of the 20 guided steps),
    # 8 effective rollbacks (the release's 4 discarded ones are skipped).
    rows = build_schedule("drag", 50, guidance=True)
    assert count_evaluations(rows, guidance_energies=2) == {
        "inversion": 50,
        "sampling": 58,
        "guidance_forward": 48,
        "guidance_backward": 56,
        "rollback": 8,
    }
    assert count_evaluations(build_schedule("landmark", 50, True), guidance_energies=1)["guidance_backward"] == 28


def test_no_guidance_means_no_time_travel() -> None:
    rows = build_schedule("move", 50, guidance=False)
    assert not any(r.guide for r in rows)
    assert all(r.passes == 1 for r in rows)
    assert [r.i for r in rows if r.sde] == list(range(11, 20))  # SDE, IP and KV still apply (§4)
    assert count_evaluations(rows, 2)["sampling"] == 50


def test_windows_scale_in_proportion() -> None:
    rows = build_schedule("move", 25, guidance=True)
    assert [r.i for r in rows if r.ip] == list(range(5, 10))
    assert [r.i for r in rows if r.passes == 3] == [11, 12, 13, 14]
    rows = build_schedule("move", 100, guidance=True)
    assert [r.i for r in rows if r.ip] == list(range(20, 40))
    assert [r.i for r in rows if r.passes == 3] == [44, 48, 52, 56]


@given(st.integers(min_value=4, max_value=200), st.sampled_from(["move", "drag", "landmark", "appearance", "paste"]))
def test_schedule_properties(steps: int, task: str) -> None:
    rows = build_schedule(task, steps, guidance=True)
    assert len(rows) == steps
    assert [r.i for r in rows] == list(range(steps))
    assert all(a.t > b.t for a, b in zip(rows, rows[1:]))
    assert rows[-1].t_prev < 0 < rows[-1].t
    assert all(r.guide for r in rows if r.passes > 1)  # time travel only on guided steps
    assert {r.i for r in rows if r.sde} <= {r.i for r in rows if r.ip}  # SDE window inside the IP window
