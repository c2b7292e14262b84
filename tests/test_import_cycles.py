"""No import cycle inside the package: every `claimbench` import of every module, function-level ones
included (parsed with ast by claimbench.dvcgen._imports; imports under `if TYPE_CHECKING:` run nothing
and are left out), forms a graph with no cycle. A late import that hides a cycle from the layer check
(as audit -> report once did) fails here."""

from pathlib import Path

from claimbench.dvcgen import SRC, _imports, _module_name

FILES = sorted((SRC / "claimbench").rglob("*.py"))


def import_graph(files: list[Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports (a `from m import name` counts as m, or as m.name when
    that is a module; the bare `claimbench` package, which every `from claimbench import x` names, is
    not an edge)."""
    modules = {_module_name(p) for p in files}
    graph = {}
    for path in files:
        me, edges = _module_name(path), set()
        for name in _imports(path):
            parts = name.split(".")
            hit = next((".".join(parts[:i]) for i in range(len(parts), 1, -1) if ".".join(parts[:i]) in modules),
                       None)
            if hit and hit != me:
                edges.add(hit)
        graph[me] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated last) per strongly connected set of modules that
    import each other, found by depth-first search."""
    found, done, seen_in_cycle = [], set(), set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycle = stack[stack.index(node):] + [node]
            if not set(cycle) <= seen_in_cycle:
                found.append(cycle)
                seen_in_cycle.update(cycle)
            return
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, stack)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_no_module_of_the_package_takes_part_in_an_import_cycle():
    found = cycles(import_graph(FILES))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_graph_sees_function_level_imports_and_the_check_finds_a_cycle(monkeypatch):
    """The check is live: audit importing report inside a function (report imports audit) is a cycle."""
    audit, report = SRC / "claimbench" / "audit.py", SRC / "claimbench" / "report.py"
    real = Path.read_text

    def read(self, *a, **k):
        text = real(self, *a, **k)
        if self == audit:
            text += "\n\ndef late():\n    from claimbench.report import render\n    return render\n"
        return text

    monkeypatch.setattr(Path, "read_text", read)
    graph = import_graph([audit, report])
    assert graph == {"claimbench.audit": {"claimbench.report"}, "claimbench.report": {"claimbench.audit"}}
    assert cycles(graph) == [["claimbench.audit", "claimbench.report", "claimbench.audit"]]


def test_cycles_finds_a_longer_loop_and_nothing_in_a_tree():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
