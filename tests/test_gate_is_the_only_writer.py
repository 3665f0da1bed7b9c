"""The privacy gate (``lethe.privacy.gate``) is the only code that stores, changes or deletes personal
data: faces and their templates, photos' rows and tombstones, crops, vectors, requesters' probes,
objection templates and source keys. An AST scan of every module of Lethe finds each write of those
tables and files and fails when one is outside the gate, except where the table below says why:
the primitives themselves (the catalog's methods, the key ring, the crop store, the index backends)
and the store's crash repair, which only makes files match the catalog again."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import lethe

PACKAGE = Path(lethe.__file__).resolve().parent

#: ORM rows that hold personal data (or the keys that make it readable).
PERSONAL_ROWS = frozenset(
    {
        "FaceRow",
        "ImageRow",
        "FacelessImageRow",
        "ErasedImageRow",
        "RequestProbeRow",
        "RequestProbeBlobRow",
        "SuppressionRow",
        "SourceKeyRow",
        "ConsentRow",
        "ConsentFaceRow",
        "SearchLogRow",
    }
)
#: Methods that write personal data, by the name of the object they are called on.
PRIMITIVES = {
    "crops": {"write", "delete", "begin"},
    "index": {"add", "remove", "rebuild"},
    "keyring": {"shred"},
    "catalog": {"add_images", "add_faces", "replace_templates"},
}
#: Module (relative to the package) -> functions that may write, and why. Everything under
#: privacy/gate/ may.
ALLOWED = {
    "catalog/repository.py": (
        {"add_images", "add_faces", "_insert_faces", "replace_templates"},
        "the catalog's write primitives",
    ),
    "catalog/keys.py": (
        {"create", "delete", "rewrap_all"},
        "the key rows' primitives (used by the key ring)",
    ),
    "store.py": (
        {"rebuild_index", "rebuild_vectors", "_clean_up_after_crash"},
        "crash repair and rebuilds: files made to match the catalog, no face added or removed",
    ),
}


@dataclass(frozen=True)
class Write:
    module: str
    function: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} in {self.function}(): {self.what}"


def _mentions_personal_row(node: ast.AST) -> str | None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in PERSONAL_ROWS:
            return sub.id
    return None


def _receiver(call: ast.Call) -> str | None:
    """``x.crops.write(...)`` -> "crops"; ``crops.write(...)`` -> "crops"."""
    if not isinstance(call.func, ast.Attribute):
        return None
    value = call.func.value
    if isinstance(value, ast.Attribute):
        return value.attr
    if isinstance(value, ast.Name):
        return value.id
    return None


def _writes_in(function: ast.AST, module: str, name: str) -> list[Write]:
    found: list[Write] = []
    rows: set[str] = set()  # local names bound to personal rows
    for node in ast.walk(function):
        if isinstance(node, ast.Assign | ast.For | ast.AnnAssign):
            value = node.iter if isinstance(node, ast.For) else node.value
            targets = [node.target] if isinstance(node, ast.For | ast.AnnAssign) else node.targets
            if value is not None and _mentions_personal_row(value):
                rows |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            receiver = _receiver(node)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if method in {"add", "add_all"} and receiver == "session":
                row = _mentions_personal_row(node) or next(
                    (a.id for a in node.args if isinstance(a, ast.Name) and a.id in rows), None
                )
                if row:
                    found.append(Write(module, name, node.lineno, f"session.{method}({row}...)"))
            if method == "delete" and receiver == "session" and node.args:
                target = node.args[0]
                if isinstance(target, ast.Name) and target.id in rows:
                    found.append(Write(module, name, node.lineno, f"session.delete({target.id})"))
            if isinstance(node.func, ast.Name) and node.func.id in {"insert", "update", "delete"}:
                row = _mentions_personal_row(node)
                if row:
                    found.append(Write(module, name, node.lineno, f"{node.func.id}({row})"))
            if receiver in PRIMITIVES and method in PRIMITIVES[receiver]:
                found.append(Write(module, name, node.lineno, f"{receiver}.{method}()"))
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for t in ast.walk(target):
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in rows:
                    found.append(Write(module, name, node.lineno, f"{t.value.id}.{t.attr} = ..."))
    return found


def writes(source: str, module: str) -> list[Write]:
    """Every personal-data write in a module's source, by the function that makes it."""
    tree = ast.parse(source, module)
    found: list[Write] = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        nested = {id(n) for f in ast.walk(function) if f is not function for n in ast.walk(f)
                  if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}  # fmt: skip
        for write in _writes_in(function, module, function.name):
            if not any(
                id(n) in nested for n in ast.walk(function) if getattr(n, "lineno", None) == write.line
            ):
                found.append(write)
    return sorted(set(found), key=lambda w: (w.module, w.line))


def _allowed(write: Write) -> bool:
    if write.module.startswith("privacy/gate/"):
        return True
    functions, _why = ALLOWED.get(write.module, (set(), ""))
    return write.function in functions


def _all_writes() -> list[Write]:
    found: list[Write] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module.startswith(("catalog/migrations/", "index/", "storage.py", "crops.py")):
            continue  # schema history; the index backends and the crop store implement the primitives
        found += writes(path.read_text(), module)
    return found


def test_no_module_outside_the_gate_writes_personal_data() -> None:
    outside = [str(w) for w in _all_writes() if not _allowed(w)]
    assert outside == [], "personal data written outside lethe.privacy.gate:\n" + "\n".join(outside)


def test_the_gate_holds_the_writes_of_every_kind() -> None:
    """The scan sees the gate's own writes of every kind (else an empty result above would prove
    nothing)."""
    kinds = {w.what.split("(")[0] for w in _all_writes() if w.module.startswith("privacy/gate/")}
    assert {
        "session.add",
        "session.delete",
        "crops.write",
        "crops.delete",
        "index.add",
        "index.remove",
        "keyring.shred",
        "catalog.add_images",
        "catalog.replace_templates",
    } <= kinds


def test_the_scan_finds_each_kind_of_write() -> None:
    """A module that writes in each of the ways the scan knows is caught, each time."""
    bad = """
def sneaky(store, session, face_id, vectors):
    session.add(FaceRow(id=1))
    row = SuppressionRow(templates=b"")
    session.add(row)
    face = session.get(FaceRow, face_id)
    face.embedding = b""
    session.delete(face)
    session.execute(delete(SuppressionRow).where(SuppressionRow.id == 1))
    for probe in session.scalars(select(RequestProbeBlobRow)):
        session.delete(probe)
    store.crops.write(face_id, b"", source_id=1)
    store.index.remove(vectors)
    store.keyring.shred(1)
    store.catalog.replace_templates(None, {}, embedder="x", audit_as=None)

def reader(session, face_id):
    face = session.get(FaceRow, face_id)
    return face.embedding
"""
    found = writes(bad, "elsewhere.py")
    assert [w.function for w in found] == ["sneaky"] * 10
    assert not any(_allowed(w) for w in found)
    assert [w.what for w in writes(bad, "privacy/gate/x.py") if not _allowed(w)] == []
