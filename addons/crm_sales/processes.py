"""Defining sales processes (业务模式) and their stages: the rules the settings page (:mod:`.views_processes`)
applies, kept apart from the web layer so the REST API or a script can apply them too.

The rules:

- every process keeps, among its *active* stages, at least one ``open`` stage (where new opportunities start,
  :func:`.stages.first_stage`), at least one ``won`` and at least one ``lost`` stage (the board, the funnel
  and the targets look for them); ``abandoned`` is optional;
- exactly one process is the default (:func:`set_default` switches it in one flush); the default is active;
- a stage an opportunity uses — its current stage or one of its stage history (:class:`~.models.StageChange`)
  — is never deleted, only deactivated; its kind cannot change either (the opportunities' status is the kind
  of their stage); a process that opportunities use is never deleted;
- changing a stage's probability moves the open opportunities of that stage with it, in one UPDATE — except
  those whose probability a manager had set by hand (it differs from the stage's old probability): those
  keep their value. Closed opportunities (won, lost, abandoned) keep theirs: it is their history.

The default process's texts are stored as English message ids and shown translated
(:func:`.stages.stage_label`); :func:`keep_label` keeps the stored id when an administrator saves the text
they were shown unchanged, so a stage's name stays translated until an administrator really renames it.

Every function flushes; the caller commits (or rolls back on :class:`ProcessError`).
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import exists, func, or_, select, update

from core.extensions import db

from . import stages
from .models import STAGE_KINDS, Opportunity, SalesProcess, Stage, StageChange

#: the kinds a process must always have among its active stages
NEEDED_KINDS = ("open", "won", "lost")

#: the stages of a new process that copies none (message ids of default stages: probability, kind and
#: guidance come from :data:`.stages.DEFAULT_STAGES`)
SKELETON = ("Opportunity", "Won", "Lost", "Abandoned")


class ProcessError(ValueError):
    """A change refused: ``str(exc)`` is the translated message."""


def keep_label(stored: str | None, typed: str) -> str:
    """What to store when an administrator submits ``typed`` for a text stored as ``stored``: the stored text
    (a message id, shown translated) when they left the translation they saw as it was, else what they typed."""
    typed = (typed or "").strip()
    if stored and typed == stages.stage_label(stored).strip():
        return stored
    return typed


def label(text: str | None) -> str:
    return stages.stage_label(text)


# -- queries --------------------------------------------------------------------------------------------
def all_processes() -> list[SalesProcess]:
    return list(db.session.scalars(select(SalesProcess).order_by(SalesProcess.sequence, SalesProcess.id)))


def active_processes() -> list[SalesProcess]:
    return [process for process in all_processes() if process.active]


def stage_in_use(stage_id: int) -> bool:
    """Whether an opportunity is in the stage or ever was (its stage history)."""
    return bool(db.session.scalar(select(or_(
        exists().where(Opportunity.stage_id == stage_id),
        exists().where(or_(StageChange.from_stage_id == stage_id, StageChange.to_stage_id == stage_id))))))


def stages_in_use(process: SalesProcess) -> set[int]:
    """The ids of the process's stages that opportunities use (current stage or stage history)."""
    ids = [stage.id for stage in process.stages]
    if not ids:
        return set()
    current = db.session.scalars(select(Opportunity.stage_id).where(Opportunity.stage_id.in_(ids)).distinct())
    came = db.session.scalars(select(StageChange.to_stage_id).where(StageChange.to_stage_id.in_(ids)).distinct())
    left = db.session.scalars(select(StageChange.from_stage_id).where(StageChange.from_stage_id.in_(ids)).distinct())
    return {*current, *came, *left} - {None}


def opportunity_counts(process: SalesProcess) -> dict[int, int]:
    """``{stage_id: number of opportunities currently in it}`` (one GROUP BY)."""
    rows = db.session.execute(select(Opportunity.stage_id, func.count()).where(Opportunity.process_id == process.id)
                              .group_by(Opportunity.stage_id))
    return {stage_id: count for stage_id, count in rows}


def process_in_use(process: SalesProcess) -> bool:
    if db.session.scalar(select(exists().where(Opportunity.process_id == process.id))):
        return True
    return bool(stages_in_use(process))


# -- checks ---------------------------------------------------------------------------------------------
def check_kinds(process: SalesProcess, stage_list=None) -> None:
    """Raise :class:`ProcessError` unless the active stages of ``stage_list`` (default: the process's) have an
    open, a won and a lost stage."""
    active = [stage for stage in (process.stages if stage_list is None else stage_list) if stage.active]
    have = {stage.kind for stage in active}
    missing = [kind for kind in NEEDED_KINDS if kind not in have]
    if missing:
        names = _(", ").join(str(stages.KIND_LABELS[kind]) for kind in missing)
        raise ProcessError(_("A sales process needs at least one active stage of each kind open, won and lost; "
                             "“%(process)s” would have none of: %(kinds)s.", process=label(process.name), kinds=names))


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ProcessError(_("Give a name."))
    if len(name) > 128:
        raise ProcessError(_("A name has at most 128 characters."))
    return name


def _renumber(process: SalesProcess, ordered: list[Stage]) -> None:
    for index, stage in enumerate(ordered):
        if stage.sequence != (index + 1) * 10:
            stage.sequence = (index + 1) * 10
    process.stages.sort(key=lambda s: s.sequence)


# -- processes ------------------------------------------------------------------------------------------
def create_process(name: str, description: str = "", copy_from: SalesProcess | None = None) -> SalesProcess:
    """A new process with the stages of ``copy_from`` (names, probabilities, kinds, required fields and
    guidance; its active stages only), or the four stages Opportunity, Won, Lost and Abandoned. Not the
    default unless there is none."""
    name = _check_name(name)
    sequence = (db.session.scalar(select(func.max(SalesProcess.sequence))) or 0) + 10
    process = SalesProcess(name=name, description=(description or "").strip(), active=True, is_default=False,
                           sequence=sequence)
    if copy_from is not None:
        for source in stages.active_stages(copy_from):
            process.stages.append(Stage(name=source.name, probability=source.probability, kind=source.kind,
                                        required_fields=list(source.required_fields or []),
                                        guidance=source.guidance or "", active=True, sequence=source.sequence))
    else:
        defaults = {stages._msgid(row[0]): row for row in stages.DEFAULT_STAGES}
        for index, msgid in enumerate(SKELETON):
            _name, probability, kind, _required, guidance = defaults[msgid]
            process.stages.append(Stage(name=msgid, probability=probability, kind=kind, required_fields=[],
                                        guidance=stages._msgid(guidance), active=True, sequence=(index + 1) * 10))
    check_kinds(process)
    db.session.add(process)
    if not db.session.scalar(select(exists().where(SalesProcess.is_default.is_(True)))):
        process.is_default = True
    db.session.flush()
    return process


def update_process(process: SalesProcess, name: str, description: str = "", active: bool = True) -> None:
    """Rename (the default process's translated name stays translated if left as shown), describe,
    (de)activate. The default process cannot be deactivated."""
    process.name = _check_name(keep_label(process.name, name))
    process.description = (description or "").strip()
    if not active and process.is_default:
        raise ProcessError(_("The default sales process cannot be deactivated: make another process the default "
                             "first."))
    process.active = bool(active)
    db.session.flush()


def set_default(process: SalesProcess) -> None:
    """Make ``process`` the default and the previous default(s) not, in one flush (exactly one default at all
    times; through the ORM so the audit trail records both changes)."""
    if not process.active:
        raise ProcessError(_("An inactive sales process cannot be the default."))
    check_kinds(process)
    rows = db.session.scalars(select(SalesProcess).where(
        or_(SalesProcess.is_default.is_(True), SalesProcess.id == process.id)))
    for row in rows:
        row.is_default = row.id == process.id
    db.session.flush()


def delete_process(process: SalesProcess) -> None:
    """Delete a process nobody uses, with its stages."""
    if process.is_default:
        raise ProcessError(_("The default sales process cannot be deleted: make another process the default "
                             "first."))
    if process_in_use(process):
        raise ProcessError(_("“%(process)s” is used by opportunities and cannot be deleted; deactivate it "
                             "instead.", process=label(process.name)))
    db.session.delete(process)
    db.session.flush()


# -- stages ---------------------------------------------------------------------------------------------
def _clean_stage_values(values: dict) -> dict:
    out = {}
    if "name" in values:
        out["name"] = _check_name(values["name"])
    if "kind" in values:
        if values["kind"] not in STAGE_KINDS:
            raise ProcessError(_("Unknown kind of stage."))
        out["kind"] = values["kind"]
    if "probability" in values:
        probability = values["probability"]
        if probability is None or not 0 <= int(probability) <= 100:
            raise ProcessError(_("The probability is a whole percentage from 0 to 100."))
        out["probability"] = int(probability)
    if "required_fields" in values:
        codes = list(values["required_fields"] or [])
        unknown = [code for code in codes if code not in stages.REQUIRED_FIELDS]
        if unknown:
            raise ProcessError(_("Unknown required field: %(codes)s.", codes=", ".join(unknown)))
        out["required_fields"] = [code for code in stages.REQUIRED_FIELDS if code in codes]  # the page's order
    if "guidance" in values:
        out["guidance"] = (values["guidance"] or "").strip()
    if "active" in values:
        out["active"] = bool(values["active"])
    return out


def add_stage(process: SalesProcess, values: dict) -> Stage:
    """Add a stage: an open one after the last open stage, a closing one at the end."""
    data = _clean_stage_values({"kind": "open", "probability": 0, "required_fields": [], "guidance": "",
                                **values})
    stage = Stage(active=True, **{k: v for k, v in data.items() if k != "active"})
    with db.session.no_autoflush:
        ordered = sorted(process.stages, key=lambda s: (s.sequence, s.id))
        position = len(ordered)
        if stage.kind == "open":
            opens = [index for index, s in enumerate(ordered) if s.kind == "open"]
            position = opens[-1] + 1 if opens else 0
        ordered.insert(position, stage)
        process.stages.append(stage)
        _renumber(process, ordered)
    db.session.flush()
    return stage


def update_stage(stage: Stage, values: dict) -> int:
    """Change a stage; returns how many open opportunities took its new probability (see the module).

    The name and guidance keep their translation when left as shown (:func:`keep_label`); the kind of a
    stage in use cannot change; the process must keep an open, a won and a lost active stage.
    """
    if "name" in values:
        values = {**values, "name": keep_label(stage.name, values["name"])}
    if "guidance" in values:
        values = {**values, "guidance": keep_label(stage.guidance, values["guidance"])}
    data = _clean_stage_values(values)
    if "kind" in data and data["kind"] != stage.kind and stage_in_use(stage.id):
        raise ProcessError(_("The stage “%(stage)s” is used by opportunities: its kind cannot change (their status "
                             "is the kind of their stage).", stage=label(stage.name)))
    old_probability = stage.probability
    new_kind, new_active = data.get("kind", stage.kind), data.get("active", stage.active)
    if (new_kind, new_active) != (stage.kind, stage.active):
        proxy = [_Shadow(s.kind, s.active) if s is not stage else _Shadow(new_kind, new_active)
                 for s in stage.process.stages]
        check_kinds(stage.process, proxy)
    for key, value in data.items():
        setattr(stage, key, value)
    followed = 0
    if "probability" in data and data["probability"] != old_probability:
        followed = follow_probability(stage, old_probability)
    db.session.flush()
    return followed


class _Shadow:
    """A stage as it would be after a change (for :func:`check_kinds`)."""

    def __init__(self, kind: str, active: bool):
        self.kind, self.active = kind, active


def follow_probability(stage: Stage, old_probability: int) -> int:
    """The open opportunities of ``stage`` still at its old probability take the new one: one UPDATE."""
    result = db.session.execute(
        update(Opportunity)
        .where(Opportunity.stage_id == stage.id, Opportunity.status == "open",
               Opportunity.probability == old_probability)
        .values(probability=stage.probability)
        .execution_options(synchronize_session="fetch"))
    return result.rowcount or 0


def set_stage_active(stage: Stage, active: bool) -> None:
    update_stage(stage, {"active": active})


def move_stage(stage: Stage, direction: str) -> None:
    """Swap ``stage`` with its neighbour (``"up"`` or ``"down"``) and renumber the sequences 10, 20, …"""
    ordered = sorted(stage.process.stages, key=lambda s: (s.sequence, s.id))
    index = ordered.index(stage)
    other = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= other < len(ordered):
        return
    ordered[index], ordered[other] = ordered[other], ordered[index]
    _renumber(stage.process, ordered)
    db.session.flush()


def delete_stage(stage: Stage) -> None:
    """Delete a stage no opportunity uses (else :class:`ProcessError`: deactivate it instead)."""
    if stage_in_use(stage.id):
        raise ProcessError(_("The stage “%(stage)s” is used by opportunities (as their stage or in their stage "
                             "history) and cannot be deleted; deactivate it instead.", stage=label(stage.name)))
    process = stage.process
    check_kinds(process, [s for s in process.stages if s is not stage])
    process.stages.remove(stage)
    db.session.flush()
    _renumber(process, sorted(process.stages, key=lambda s: (s.sequence, s.id)))
    db.session.flush()
