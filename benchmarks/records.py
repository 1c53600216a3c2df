"""The benchmark records in benchmarks/results/ (schema: benchmarks/results/README.md) and the report built from them.

    python benchmarks/records.py check                  # every record against the schema
    python benchmarks/records.py check-report           # BENCHMARKS.md's generated blocks against the records
    python benchmarks/records.py report --write         # rewrite those blocks from the records
    python benchmarks/records.py plot --out DIR         # the figures, drawn from the records' numbers
    python benchmarks/records.py import OUT.json --id ID  # a record from a `spikeformers bench --out` output

Standard library only, and matplotlib for `plot`; it does not import spikeformers, so it runs anywhere.
Exit status 0 when everything holds, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import argparse
import ast
import json
import operator
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["RESULTS", "REPORT", "MAX_REPORT_LINES", "MAX_RESULTS_BYTES", "SPEED", "KINDS", "RecordError",
           "load_records", "check_record", "check_records", "evaluate", "fill", "headline_rows", "render_block",
           "render_headline", "report_blocks", "check_report", "write_report", "DEFAULT_TABLES", "from_bench", "plot",
           "main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "BENCHMARKS.md"
MAX_REPORT_LINES = 350
MAX_RESULTS_BYTES = 1_500_000

#: what each kind of record measures; the speed kinds must state TF32 and cudnn.benchmark per contender
KINDS = {"neuron": "fused neuron kernel vs peers", "model": "training step vs SpikingJelly",
         "ddp": "data-parallel scaling", "lm": "language model training to a target",
         "lm_speed": "language model training step speed", "memory": "memory over T",
         "kernel": "one kernel family vs torch", "train": "a training recipe to a target",
         "suite": "a benchmark suite's leaderboard", "dense": "dense prediction to a target"}
SPEED = {"neuron", "model", "ddp", "lm_speed", "memory", "kernel"}
REQUIRED = {"schema": int, "id": str, "benchmark": str, "title": str, "date": str, "device": str, "gpus": int,
            "versions": dict, "commit": (str, type(None)), "command": (str, list), "settings": dict, "results": dict}
OPTIONAL = {"commit_dirty": (bool, type(None)), "table": dict, "headline": list, "raw_output": dict, "notes": str}
CONTENDER_KEYS = ("precision", "tf32", "cudnn_benchmark")

#: the table of a record that names none, per benchmark: the rows `spikeformers bench` writes (a record's own
#: `table` keys, e.g. `where`, override these)
DEFAULT_TABLES: Dict[str, Dict[str, Any]] = {
    "neuron": {"group_by": ["dtype", "numel", "T"], "member": "contender", "columns": [
        ["dtype", "dtype"], ["size (M)", "numel / 1e6", ".1f"], ["T", "T"], ["ours ms", "c['ours']['ms']", ".3g"],
        ["SJ ms", "best(c, 'sj', 'ms')", ".3g"], ["SJ / ours", "best(c, 'sj', 'ms') / c['ours']['ms']", ".2f"],
        ["ours % of copy", "c['ours']['frac_copy_bw'] * 100", ".1f"], ["ours graph ms", "c['ours']['graph_ms']", ".3g"],
        ["SJ graph ms", "best(c, 'sj', 'graph_ms')", ".3g"],
        ["SJ / ours (graph)", "best(c, 'sj', 'graph_ms') / c['ours']['graph_ms']", ".2f"]]},
    "model": {"columns": [
        ["setting", "setting"], ["batch", "batch"], ["images/s", "images_per_s", ",.0f"], ["ms/step", "step_ms", ".3g"],
        ["peak GB", "peak_gb", ".3g"], ["x SJ's fastest", "images_per_s / fastest(rows, 'sj', batch)", ".3g"]]},
    "ddp": {"columns": [
        ["GPUs", "gpus"], ["global batch", "global_batch"], ["images/s", "images_per_s", ",.0f"],
        ["ms/step", "step_ms", ".3g"], ["peak GB per GPU", "peak_gb", ".3g"],
        ["speedup", "images_per_s / rows[0]['images_per_s']", ".2f"]]},
    "lm_speed": {"columns": [
        ["setting", "setting"], ["heads", "heads"], ["tokens/s", "tokens_per_s", ",.0f"], ["ms/step", "step_ms", ".3g"],
        ["peak GB", "peak_gb", ".3g"], ["of the twin", "tokens_per_s / rows[0]['tokens_per_s']", ".2f"]]},
}


class RecordError(ValueError):
    """A record, or the report, disagrees with the schema or with the other."""


# ---------------------------------------------------------------- expressions over a record's numbers

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def _best(group: Dict[str, Any], prefix: str, field: str) -> float:
    """The smallest `field` among the contenders of a group whose name starts with `prefix` (fastest peer)."""
    values = [r[field] for name, r in group.items() if name.startswith(prefix) and r.get(field) is not None]
    if not values:
        raise KeyError(prefix)
    return min(values)


_COMPARE = {ast.Gt: operator.gt, ast.Lt: operator.lt, ast.GtE: operator.ge, ast.LtE: operator.le, ast.Eq: operator.eq,
            ast.NotEq: operator.ne, ast.In: lambda a, b: a in b}
def _fastest(rows: List[Dict[str, Any]], prefix: str, batch: Any) -> float:
    """The most images/s among the rows of settings starting with `prefix` at this batch (SpikingJelly's fastest)."""
    values = [r["images_per_s"] for r in rows
              if str(r.get("setting", "")).startswith(prefix) and r.get("batch") == batch]
    if not values:
        raise KeyError(prefix)
    return max(values)


_FUNCS = {"min": min, "max": max, "abs": abs, "sum": sum, "len": len, "best": _best, "fastest": _fastest}


def evaluate(expr: str, names: Dict[str, Any]) -> Any:
    """Evaluate `expr`: names, subscripts, numbers, strings, + - * / // %, unary minus, lists, comparisons,
    and/or and min/max/abs/sum/len/best/fastest.
    Nothing else (no attributes, no other calls), so a record cannot run code."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.Subscript):
            return ev(node.value)[ev(node.slice)]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = ev(comp)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):  # Python's value: `a or b` is a if a is true, else b
            value = None
            for v in node.values:
                value = ev(v)
                if bool(value) != isinstance(node.op, ast.And):
                    break
            return value
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords):
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise RecordError(f"expression {expr!r}: {type(node).__name__} is not allowed")

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise RecordError(f"expression {expr!r}: {e.msg}") from None
    return ev(tree)


def _format(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) or not spec:
        return str(value)
    return format(value, spec)


_FIELD = re.compile(r"\{([^{}]+)\}")


def fill(template: str, names: Dict[str, Any], missing: Optional[str] = None) -> str:
    """Replace every `{expression:format}` in `template` by its value. A missing name or key gives `missing`
    when that is set (a table cell without the number) and raises otherwise."""

    def one(m: re.Match) -> str:
        expr, _, spec = m.group(1).partition(":")
        try:
            return _format(evaluate(expr.strip(), names), spec)
        except (KeyError, IndexError, TypeError, ZeroDivisionError) as e:
            if missing is not None:
                return missing
            raise RecordError(f"{{{m.group(1)}}}: {type(e).__name__} {e}") from None

    return _FIELD.sub(one, template)


# ---------------------------------------------------------------- the records and their schema

def load_records(folder: Path = RESULTS) -> Dict[str, Dict[str, Any]]:
    """Every record in `folder`, by id (the file name without .json)."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise RecordError(f"{path.name}: not JSON ({e.msg}, line {e.lineno})") from None
    return out


def _type_name(t) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def check_record(name: str, rec: Dict[str, Any]) -> List[str]:
    """The problems of one record (empty when it follows the schema)."""
    errs = []
    for key, t in REQUIRED.items():
        if key not in rec:
            errs.append(f"{name}: missing key {key!r}")
        elif not isinstance(rec[key], t) or (t is int and isinstance(rec[key], bool)):
            errs.append(f"{name}: {key!r} must be {_type_name(t)}")
    for key in rec:
        if key not in REQUIRED and key not in OPTIONAL:
            errs.append(f"{name}: unknown key {key!r} (schema: benchmarks/results/README.md)")
        elif key in OPTIONAL and not isinstance(rec[key], OPTIONAL[key]):
            errs.append(f"{name}: {key!r} must be {_type_name(OPTIONAL[key])}")
    if errs:
        return errs
    if rec["schema"] != 1:
        errs.append(f"{name}: schema {rec['schema']} (this checker reads 1)")
    if rec["id"] != name:
        errs.append(f"{name}: id {rec['id']!r} differs from the file name")
    if rec["benchmark"] not in KINDS:
        errs.append(f"{name}: benchmark {rec['benchmark']!r} is none of {', '.join(KINDS)}")
    if not re.fullmatch(r"20\d\d-[01]\d-[0-3]\d", rec["date"]):
        errs.append(f"{name}: date {rec['date']!r} is not YYYY-MM-DD")
    if rec["gpus"] < 0 or (rec["gpus"] == 0) != rec["device"].startswith("cpu"):
        errs.append(f"{name}: gpus {rec['gpus']} does not fit device {rec['device']!r} (0 exactly for a cpu)")
    if not isinstance(rec["versions"].get("torch"), str):
        errs.append(f"{name}: versions must name torch")
    if rec["commit"] is not None and not re.fullmatch(r"[0-9a-f]{7,40}", rec["commit"]):
        errs.append(f"{name}: commit {rec['commit']!r} is not a git hash")
    commands = rec["command"] if isinstance(rec["command"], list) else [rec["command"]]
    if not commands or not all(isinstance(c, str) and c.strip() for c in commands):
        errs.append(f"{name}: command must be a non-empty string or list of strings")
    errs += [f"{name}: {e}" for e in _outside_paths(rec)]
    if rec["benchmark"] in SPEED:
        errs += _check_contenders(name, rec["settings"])
    if _table(rec):
        errs += _check_table(name, rec)
    for i, h in enumerate(rec.get("headline", [])):
        errs += _check_headline(f"{name}: headline {i + 1}", h, rec)
    raw = rec.get("raw_output")
    if raw is not None and (not re.fullmatch(r"[0-9a-f]{40}", str(raw.get("commit")))
                            or not isinstance(raw.get("paths"), list)):
        errs.append(f"{name}: raw_output needs a 40-digit commit and a list of paths")
    return errs


def _check_contenders(name: str, settings: Dict[str, Any]) -> List[str]:
    contenders = settings.get("contenders")
    if not isinstance(contenders, dict) or not contenders:
        return [f"{name}: a speed record states settings.contenders (TF32 and cudnn.benchmark for each)"]
    errs = []
    for who, s in contenders.items():
        for key in CONTENDER_KEYS:
            if not isinstance(s, dict) or key not in s:
                errs.append(f"{name}: contender {who!r} lacks {key!r} (null when not recorded)")
            elif key != "precision" and s[key] is not None and not isinstance(s[key], bool):
                errs.append(f"{name}: contender {who!r}: {key} must be true, false or null")
    if not isinstance(settings.get("source"), str):
        errs.append(f"{name}: settings.source must say where the contenders' settings come from")
    return errs


def _check_table(name: str, rec: Dict[str, Any]) -> List[str]:
    table = _table(rec)
    rows = rec["results"].get(table.get("rows", "rows"))
    if not isinstance(rows, list) or not rows:
        return [f"{name}: table: results.{table.get('rows', 'rows')} must be a non-empty list of rows"]
    cols = table.get("columns")
    if not isinstance(cols, list) or not all(isinstance(c, list) and len(c) in (2, 3) for c in cols):
        return [f"{name}: table.columns must be [header, expression(, format)] lists"]
    try:
        _table_lines(rec)
    except RecordError as e:
        return [f"{name}: table: {e}"]
    return []


def _check_headline(where: str, h: Dict[str, Any], rec: Dict[str, Any]) -> List[str]:
    if not isinstance(h, dict) or not isinstance(h.get("target"), str) or not isinstance(h.get("measured"), str):
        return [f"{where}: needs 'target' and 'measured' strings"]
    if ("check" in h) == ("status" in h):
        return [f"{where}: give either 'check' (the status is computed) or 'status', not both"]
    try:
        headline_rows(rec)
    except RecordError as e:
        return [f"{where}: {e}"]
    return []


_OUTSIDE = re.compile(r"(?<![\w.])(/work/|/root/|/home/|/tmp/|/opt/|/mnt/|~/|shared/)")


def _outside_paths(obj: Any, where: str = "") -> List[str]:
    """Paths of a machine outside the repository anywhere in a record's strings."""
    if isinstance(obj, dict):
        return [e for k, v in obj.items() for e in _outside_paths(v, f"{where}.{k}" if where else str(k))]
    if isinstance(obj, list):
        return [e for i, v in enumerate(obj) for e in _outside_paths(v, f"{where}[{i}]")]
    if isinstance(obj, str) and _OUTSIDE.search(obj):
        return [f"{where} names a path outside the repository: {obj[:80]!r}"]
    return []


def check_records(folder: Path = RESULTS) -> List[str]:
    """Every record's problems, and those of the folder (only records and README.md, within the size limit)."""
    errs = []
    try:
        records = load_records(folder)
    except RecordError as e:
        return [str(e)]
    for name, rec in records.items():
        errs += check_record(name, rec)
    others = [p.name for p in folder.iterdir() if p.suffix != ".json" and p.name != "README.md"]
    if others:
        errs.append(f"{folder.name}/ holds files that are not records: {', '.join(sorted(others))}")
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    if size > MAX_RESULTS_BYTES:
        errs.append(f"{folder.name}/ holds {size:,} bytes, more than {MAX_RESULTS_BYTES:,}")
    return errs


# ---------------------------------------------------------------- the report's generated blocks

def _device(rec: Dict[str, Any]) -> str:
    return rec["device"] + (f" x {rec['gpus']}" if rec["gpus"] > 1 else "")


def _versions(rec: Dict[str, Any]) -> str:
    v = rec["versions"]
    names = {"torch": "torch", "cuda": "CUDA", "triton": "Triton", "spikingjelly": "SpikingJelly"}
    return ", ".join(f"{label} {v[k]}" for k, label in names.items() if v.get(k))


def _commit(rec: Dict[str, Any]) -> str:
    if rec["commit"] is None:
        rows = rec["results"].get("rows")
        if isinstance(rows, list) and rows and all(isinstance(r, dict) and r.get("commit") for r in rows):
            return "commit per row: " + ", ".join(sorted({r["commit"][:7] for r in rows}))
        return "commit not recorded"
    dirty = {True: " with uncommitted changes", False: "", None: ""}[rec.get("commit_dirty")]
    return f"commit {rec['commit'][:7]}{dirty}"


def _flag(value: Any) -> str:
    return "not recorded" if value is None else ("on" if value else "off")


def _contender_line(contenders: Dict[str, Dict[str, Any]], source: str) -> str:
    """One line for a set of contenders: TF32 and cudnn.benchmark once where every contender has the same, else
    per contender; then each contender's precision (other settings stay in the record)."""
    parts = []
    for key, label in (("tf32", "TF32"), ("cudnn_benchmark", "cudnn.benchmark")):
        values = {c.get(key) for c in contenders.values()}
        if len(values) == 1:
            value = values.pop()
            parts.append(f"{label} not recorded" if value is None else f"{label} {_flag(value)} for every contender")
        else:
            parts.append(f"{label} " + ", ".join(f"{who} {_flag(c.get(key))}" for who, c in contenders.items()))
    groups: Dict[str, List[str]] = {}
    for who, c in contenders.items():
        groups.setdefault(c.get("precision") or "not recorded", []).append(who)
    parts.append("precision: " + "; ".join(f"{', '.join(who)} {p}" for p, who in groups.items()))
    return "Settings: " + "; ".join(parts) + f" ({source})."


def _settings_lines(recs: List[Dict[str, Any]]) -> List[str]:
    """The settings of a block's records: the contenders of records with the same source merged into one line
    where no contender differs between them."""
    lines: List[str] = []
    merged: List[Tuple[str, Dict[str, Dict[str, Any]]]] = []
    for rec in recs:
        settings = rec["settings"]
        contenders = settings.get("contenders")
        if not contenders:
            shown = {k: v for k, v in settings.items() if k != "source"}
            if shown:
                text = "; ".join(f"{k.replace('_', ' ')} {_plain(v)}" for k, v in shown.items())
                line = f"Settings: {text}" + (f" ({settings['source']})." if settings.get("source") else ".")
                if line not in lines:
                    lines.append(line)
            continue
        shown = {who: {k: c.get(k) for k in CONTENDER_KEYS} for who, c in contenders.items()}  # what the line shows
        for source, known in merged:
            if source == settings["source"] and all(known.get(k, v) == v for k, v in shown.items()):
                known.update(shown)
                break
        else:
            merged.append((settings["source"], shown))
    return [_contender_line(c, source) for source, c in merged] + lines


def _plain(v: Any) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def _table(rec: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The record's table: its benchmark's default, with the record's own `table` keys over it."""
    table = {**DEFAULT_TABLES.get(rec["benchmark"], {}), **rec.get("table", {})}
    return table if table.get("columns") else None


def _table_spec(rec: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], List[list], Dict[str, Any]]:
    table = _table(rec)
    rows = rec["results"][table.get("rows", "rows")]
    by = table.get("group_by")
    if by:  # one table row per group of rows (e.g. per cell of a kernel benchmark, its contenders side by side)
        groups: Dict[tuple, Dict[str, Any]] = {}
        for r in rows:
            key = tuple(r.get(k) for k in by)
            g = groups.setdefault(key, {**{k: r.get(k) for k in by}, "c": {}})
            g["c"][r[table["member"]]] = r
        rows = list(groups.values())
    if table.get("where"):  # the rows the report shows; the record keeps them all
        rows = [r for r in rows if evaluate(table["where"], {**rec["results"], **r, "row": r})]
    return rows, table["columns"], table


def _table_lines(rec: Dict[str, Any], record_column: bool = False) -> List[str]:
    rows, cols, _ = _table_spec(rec)
    out = []
    for r in rows:
        names = {**rec["results"], **r, "row": r}
        # a column is an expression (with an optional format), or a template of several `{expression:format}`
        cells = [fill(c[1] if "{" in c[1] else "{" + c[1] + (":" + c[2] if len(c) == 3 and c[2] else "") + "}",
                      names, missing="-") for c in cols]
        out.append("| " + (f"`{rec['id']}` | " if record_column else "") + " | ".join(cells) + " |")
    return out


def render_block(records: Dict[str, Dict[str, Any]], ids: List[str]) -> List[str]:
    """The generated lines for a block naming `ids`: one bullet per record (device, date, versions, commit,
    command), one per set of contender settings, then one table of the records' rows (with a record column
    when there are several)."""
    missing = [i for i in ids if i not in records]
    if missing:
        raise RecordError(f"no record {', '.join(missing)} in benchmarks/results/")
    recs = [records[i] for i in ids]
    lines = []
    for rec in recs:
        cmds = rec["command"] if isinstance(rec["command"], list) else [rec["command"]]
        lines.append(f"- `{rec['id']}.json`: {_device(rec)}, {rec['date']}; {_versions(rec)}; {_commit(rec)}. "
                     + " and ".join(f"`{c}`" for c in cmds))
    lines += ["- " + line for line in _settings_lines(recs)]
    tabled = [r for r in recs if _table(r)]
    if tabled:
        cols = _table(tabled[0])["columns"]
        if any(_table(r)["columns"] != cols for r in tabled):
            raise RecordError(f"records {', '.join(ids)} share a block but not their table columns")
        several = len(tabled) > 1
        lines.append("")
        lines.append("| " + ("record | " if several else "") + " | ".join(c[0] for c in cols) + " |")
        lines.append("|" + "---|" * (len(cols) + several))
        for rec in tabled:
            lines += _table_lines(rec, record_column=several)
    return lines


def headline_rows(rec: Dict[str, Any]) -> List[List[str]]:
    """The headline table rows a record gives: target, measured (its numbers filled in), device, date, record,
    status (computed from `check` where the record gives one)."""
    out = []
    names = dict(rec["results"])
    for h in rec.get("headline", []):
        measured = fill(h["measured"], names)
        if "check" in h:
            c = h["check"]
            ops = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
            if c.get("op") not in ops or not isinstance(c.get("limit"), (int, float)):
                raise RecordError(f"check needs op (one of {', '.join(ops)}) and a numeric limit")
            value = evaluate(c["expr"], names)
            status = "met" if ops[c["op"]](value, c["limit"]) else "not met"
        else:
            status = h["status"]
        out.append([h["target"], measured, _device(rec), rec["date"], f"`{rec['id']}`", status])
    return out


_BLOCK = re.compile(r"^<!-- (records|headline):?([^>]*)-->$")
_END = {"records": "<!-- /records -->", "headline": "<!-- /headline -->"}


def report_blocks(text: str) -> List[Tuple[str, List[str], int, int]]:
    """The generated blocks of a report: (kind, record ids, first line, end line) with lines 0-based; the
    block's content lies strictly between its first and end line."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        m = _BLOCK.match(lines[i].strip())
        if m:
            kind, ids = m.group(1), m.group(2).split()
            try:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == _END[kind])
            except StopIteration:
                raise RecordError(f"BENCHMARKS.md line {i + 1}: {lines[i].strip()} has no {_END[kind]}") from None
            out.append((kind, ids, i, end))
            i = end
        i += 1
    return out


def render_headline(records: Dict[str, Dict[str, Any]], order: List[str]) -> List[str]:
    """The headline table: every headline of every record, records in report order."""
    lines = ["| target | measured | device | date | record | status |", "|---|---|---|---|---|---|"]
    for rid in order:
        for row in headline_rows(records[rid]):
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _generate(text: str, records: Dict[str, Dict[str, Any]]) -> List[Tuple[int, int, List[str]]]:
    blocks = report_blocks(text)
    order: List[str] = []
    for kind, ids, _, _ in blocks:
        order += [i for i in ids if kind == "records" and i not in order]
    out = []
    for kind, ids, start, end in blocks:
        new = render_headline(records, order) if kind == "headline" else render_block(records, ids)
        out.append((start, end, new))
    return out


def check_report(report: Path = REPORT, folder: Path = RESULTS) -> List[str]:
    """The report's problems: a generated block that differs from what its records give (each differing
    headline row named with both versions), a record the report leaves out, the length limit."""
    try:
        records = load_records(folder)
        text = report.read_text()
        generated = _generate(text, records)
    except RecordError as e:
        return [str(e)]
    lines, errs = text.split("\n"), []
    if not any(True for _ in generated):
        errs.append(f"{report.name}: no generated blocks")
    for start, end, new in generated:
        old = lines[start + 1:end]
        if old == new:
            continue
        for k in range(max(len(old), len(new))):
            a = old[k] if k < len(old) else "(missing)"
            b = new[k] if k < len(new) else "(missing)"
            if a != b:
                errs.append(f"{report.name} line {start + 2 + k}: the report says {a!r}, the records give {b!r}")
                break
    shown = {i for kind, ids, _, _ in report_blocks(text) for i in ids}
    errs += [f"{report.name}: record {rid} is in no block" for rid in sorted(set(records) - shown)]
    n = len(text.rstrip("\n").split("\n"))
    if n > MAX_REPORT_LINES:
        errs.append(f"{report.name}: {n} lines, more than {MAX_REPORT_LINES}")
    return errs


def write_report(report: Path = REPORT, folder: Path = RESULTS) -> int:
    """Rewrite every generated block of the report from the records; the number of blocks rewritten."""
    text = report.read_text()
    lines = text.split("\n")
    generated = _generate(text, load_records(folder))
    for start, end, new in reversed(generated):
        lines[start + 1:end] = new
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, report)
    return len(generated)


# ---------------------------------------------------------------- a record from a benchmark's output

_SKIP_ARGS = {"out", "dry_run", "worker", "timeout"}


def _flags(args: Dict[str, Any]) -> str:
    """The command-line flags that repeat `args` (argparse's names back to --dashes)."""
    out = []
    for k, v in args.items():
        if k in _SKIP_ARGS or v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, list):
            out.append(" ".join([flag] + [f"{x:g}" if isinstance(x, float) else str(x) for x in v]))
        else:
            out.append(f"{flag} {v:g}" if isinstance(v, float) else f"{flag} {v}")
    return " ".join(out)


def from_bench(out: Dict[str, Any], rid: str, title: Optional[str] = None) -> Dict[str, Any]:
    """A schema-1 record from what `spikeformers bench NAME --out FILE` writes (suite, provenance, args, rows,
    and `settings` where the benchmark states them; contenders without stated settings get null = not
    recorded). A file that already follows the schema is returned with its id set."""
    if out.get("schema") == 1:
        return dict(out, id=rid)
    if out.get("complete") is False:
        raise RecordError("the benchmark did not finish (complete: false): no record from a partial run")
    suite, prov, args = out["suite"], out["provenance"], dict(out.get("args", {}))
    benchmark = {"lm": "lm_speed"}.get(suite, suite)
    rows = out["rows"]
    names = []
    for r in rows:
        who = r.get("setting") or r.get("contender")
        if who is None and "gpus" in r:
            who = f"{r['gpus']} GPU" + "s" * (r["gpus"] > 1)
        if who is not None and who not in names:
            names.append(who)
    settings = out.get("settings") or {
        "contenders": {n: {"precision": None, "tf32": None, "cudnn_benchmark": None} for n in names},
        "source": "not stated in the benchmark's output"}
    cuda = bool(prov.get("device"))
    versions = {k: prov[k] for k in ("torch", "cuda", "triton", "spikingjelly", "python") if prov.get(k)}
    rec = {"schema": 1, "id": rid, "benchmark": benchmark,
           "title": title or out.get("title")
           or f"spikeformers bench {suite}" + (f" ({args['model']})" if args.get("model") else ""),
           "date": str(prov["date"])[:10], "device": prov.get("device") or f"cpu ({prov.get('host_arch', 'x86_64')})",
           "gpus": (max(args.get("gpus", [1])) if suite == "ddp" else 1) if cuda else 0,
           "versions": versions, "commit": prov.get("commit"), "commit_dirty": prov.get("commit_dirty"),
           "command": f"spikeformers bench {suite} {_flags(args)} --out {rid}.json".replace("  ", " "),
           "settings": settings,
           "results": {k: v for k, v in out.items()
                       if k not in ("suite", "provenance", "args", "summary", "complete", "settings", "title")}}
    return rec


# ---------------------------------------------------------------- figures

def plot(out: Path, folder: Path = RESULTS) -> List[Path]:
    """Draw every figure the records hold numbers for: `results.curves` (a metric over epochs, one line per
    series, the target dashed) and, for suites, accuracy against energy per sample. Returns the files."""
    import matplotlib  # here, not at the top: check and check-report run where matplotlib is missing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rid, rec in load_records(folder).items():
        curves = rec["results"].get("curves")
        if curves:
            fig, ax = plt.subplots(figsize=(6.4, 4))
            for label, s in curves["series"].items():
                ax.plot(s["x"], s["y"], label=label)
            if curves.get("target") is not None:
                ax.axhline(curves["target"], color="gray", linestyle="--", linewidth=1, label="target")
            ax.set(xlabel=curves["x_label"], ylabel=curves["y_label"])
            ax.set_title(textwrap.fill(rec["title"], 80), fontsize=8)
            ax.legend(fontsize=8)
            written.append(_save(fig, out / f"{rid}.png"))
        if rec["benchmark"] == "suite":
            fig, ax = plt.subplots(figsize=(6.4, 4))
            for r in rec["results"]["rows"]:
                # one-seed rows have no std; rows without a label name their model, kind and T
                ax.errorbar(r["energy_45nm_uJ"], r["metric_mean"], yerr=r.get("metric_std"), fmt="o", capsize=3)
                label = r.get("label") or " ".join(str(r[k]) for k in ("model", "twin", "T") if k in r)
                ax.annotate(label, (r["energy_45nm_uJ"], r["metric_mean"]), fontsize=7,
                            xytext=(4, 2), textcoords="offset points")
            ax.set(xlabel="energy per sample, 45 nm (uJ)", ylabel=rec["results"]["metric"])
            ax.set_title(textwrap.fill(rec["title"], 80), fontsize=8)
            written.append(_save(fig, out / f"{rid}_pareto.png"))
        plt.close("all")
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


# ---------------------------------------------------------------- command line

def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="every record against the schema")
    sub.add_parser("check-report", help="BENCHMARKS.md's generated blocks against the records")
    r = sub.add_parser("report", help="print (or --write) the generated blocks")
    r.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md's blocks in place")
    i = sub.add_parser("import", help="write a record from a `spikeformers bench ... --out FILE` output")
    i.add_argument("file", help="the benchmark's JSON output")
    i.add_argument("--id", required=True, help="the record's name: <benchmark>_<subject>_<device>")
    i.add_argument("--title", help="what it measures, in one line")
    p = sub.add_parser("plot", help="the figures, from the records")
    p.add_argument("--out", default=str(ROOT / "bench_out" / "figures"), help="folder (default bench_out/figures)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "check":
            errs = check_records()
        elif args.cmd == "check-report":
            errs = check_records() + check_report()
        elif args.cmd == "import":
            path = RESULTS / f"{args.id}.json"
            if path.exists():
                raise RecordError(f"{path.name} exists: a new measurement gets a new id, "
                                  "or delete the old record first")
            rec = from_bench(json.loads(Path(args.file).read_text()), args.id, args.title)
            errs = check_record(args.id, rec)
            if errs:
                raise RecordError("; ".join(errs))
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(rec, indent=1) + "\n")
            os.replace(tmp, path)
            print(f"wrote {path.relative_to(ROOT)}: name it in a BENCHMARKS.md block, then run report --write")
            return 0
        elif args.cmd == "report":
            if args.write:
                print(f"rewrote {write_report()} blocks of {REPORT.name}")
            else:
                for start, end, new in _generate(REPORT.read_text(), load_records()):
                    print("\n".join(new) + "\n")
            return 0
        else:
            for path in plot(Path(args.out)):
                print(f"wrote {path}")
            return 0
    except RecordError as e:
        print(f"records: {e}", file=sys.stderr)
        return 1
    for e in errs:
        print(e)
    if not errs:
        print(f"{args.cmd}: ok ({len(load_records())} records)")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
