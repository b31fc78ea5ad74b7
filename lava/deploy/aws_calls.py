"""Which AWS operations each deployable component's code calls, found by reading the code.

The IAM policies in ``deploy/iam/`` must grant exactly these (tests/test_deploy_iam.py), so a
new client call anywhere a service can reach fails the suite until its policy follows
(``lava deploy iam --write``). The analysis is static and deliberately simple:

1. **Clients.** A name is an aiobotocore client of service S when it is assigned from
   ``await <x>.S()`` / ``await <x>.client("S")`` (``shared.aws.AwsClients``), annotated with
   S's client type, stored as ``self.<attr>`` from such a value, or passed as an argument to a
   parameter of a project function (followed to a fixed point). ``<client>.<operation>(...)``
   where the operation is in botocore's model of S is a call of S's operation;
   ``get_paginator("query")`` and ``get_waiter("table_exists")`` count as the operation they
   run, also when the name arrives as a string argument.
2. **Reachability.** A component's roots are every function of its package (or named entry
   functions for CLI-run components). From a reached function, every project function or
   class whose simple name it mentions is reached, within the modules its roots import
   (transitively). This over-approximates (two methods named ``get`` are both reached) but
   never misses a call made through project code.
3. **Tables.** The DynamoDB tables a component touches are the ``shared.resources`` table
   specs its reached code names.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "emulators", "lava", "devstack")
AWS_SERVICES = ("s3", "sns", "sqs", "dynamodb", "sagemaker")
CLIENT_TYPES = {
    "S3Client": "s3",
    "SNSClient": "sns",
    "SQSClient": "sqs",
    "DynamoDBClient": "dynamodb",
    "SageMakerClient": "sagemaker",
}
# Methods Python calls without naming them: reaching a class reaches these.
# Methods of Python's containers and strings: called on a receiver of unknown class, such a
# name is taken as the container's (a project method of the same name is reached when the
# receiver's class is stated: an annotation or a constructor call).
CONTAINER_METHODS = frozenset(
    {
        *("get", "items", "keys", "values", "append", "extend", "insert", "pop", "popitem"),
        *("update", "setdefault", "copy", "clear", "remove", "discard", "add", "index"),
        *("count", "sort", "reverse", "join", "split", "rsplit", "strip", "lstrip", "rstrip"),
        *("format", "replace", "startswith", "endswith", "lower", "upper", "encode", "decode"),
        *("read", "write", "readline"),
    }
)
IMPLICIT = frozenset(
    {"__init__", "__post_init__", "__aenter__", "__aexit__", "__enter__", "__exit__", "__call__"}
)


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name -> API operation name, from botocore's service model."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


@cache
def waiter_operation(service: str, waiter: str) -> str:
    session = botocore.session.get_session()
    config = session.get_waiter_model(service)
    name = next(n for n in config.waiter_names if xform_name(n) == waiter)
    return str(config.get_waiter(name).operation)


@dataclass
class Function:
    """A function or method (nested functions belong to their outer function), a class body
    or a module's top level."""

    module: str
    qualname: str
    cls: str | None
    node: ast.AST
    params: list[str] = field(default_factory=list)
    is_method: bool = False
    refs: set[str] = field(default_factory=set)
    # attribute references whose receiver's class is unknown: any method of that name
    attr_refs: set[str] = field(default_factory=set)
    # attribute references whose receiver's class is known: (class, attribute)
    typed_refs: set[tuple[str, str]] = field(default_factory=set)
    # attribute references on an imported project module (``jobs.create_job``): (module, name)
    module_refs: set[tuple[str, str]] = field(default_factory=set)
    # local names -> project or library class they hold (from annotations and constructors)
    types: dict[str, str] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    calls: set[tuple[str, str]] = field(default_factory=set)
    # parameter index -> AWS service whose paginator/waiter name it carries
    op_params: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


@dataclass
class Module:
    name: str
    tree: ast.Module
    imports: set[str]
    # local name -> project module it is bound to (``from shared.operations import jobs``)
    aliases: dict[str, str] = field(default_factory=dict)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.Module, module: str) -> set[str]:
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@cache
def load_modules(root: Path = ROOT) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(path, root)
            tree = ast.parse(path.read_text(), str(path))
            modules[name] = Module(name, tree, _imports(tree, name))
    for module in modules.values():
        module.aliases = _module_aliases(module.tree, set(modules))
    return modules


def _module_aliases(tree: ast.Module, known: set[str]) -> dict[str, str]:
    """Names a module binds to project modules (absolute imports, as the project writes them)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in known:
                    aliases[alias.asname] = alias.name
    return aliases


def _foreign_names(tree: ast.Module) -> set[str]:
    """Names a module binds by importing from outside the project (a library's classes)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            continue
        if node.module.split(".")[0] not in PACKAGES:
            found.update(alias.asname or alias.name for alias in node.names)
    return found


def import_closure(start: Iterable[str], modules: dict[str, Module]) -> set[str]:
    seen: set[str] = set()
    todo = [m for m in start if m in modules]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in modules[name].imports:
            # `from a.b import c` names either module a.b.c or attribute c of a.b
            for candidate in (imported, imported.rsplit(".", 1)[0]):
                if candidate in modules and candidate not in seen:
                    todo.append(candidate)
        # a package's __init__ runs before its modules
        parent = name.rsplit(".", 1)[0]
        if parent in modules and parent not in seen:
            todo.append(parent)
    return seen


def _functions(module: Module) -> Iterator[Function]:
    top = Function(module.name, "<module>", None, module.tree)
    yield top
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield _function(module.name, node.name, None, node)
        elif isinstance(node, ast.ClassDef):
            body = Function(module.name, node.name, node.name, node)
            yield body
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield _function(module.name, f"{node.name}.{item.name}", node.name, item)


def _function(
    module: str, qualname: str, cls: str | None, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> Function:
    args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
    is_method = cls is not None and not any(
        isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list
    )
    fn = Function(module, qualname, cls, node, [a.arg for a in args], is_method)
    for arg in args:
        if arg.annotation is not None:
            named = _annotated_class(arg.annotation)
            if named:
                fn.types[arg.arg] = named
            text = ast.unparse(arg.annotation)
            for type_name, service in CLIENT_TYPES.items():
                if type_name in text:
                    fn.clients[arg.arg] = service
    return fn


def _own_nodes(fn: Function) -> Iterator[ast.AST]:
    """The nodes of ``fn``'s body, without the methods of a class body."""
    if isinstance(fn.node, ast.ClassDef):
        for item in fn.node.body:
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from ast.walk(item)
    elif isinstance(fn.node, ast.Module):
        for item in fn.node.body:
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from ast.walk(item)
    else:
        yield from ast.walk(fn.node)


def _annotated_class(annotation: ast.expr) -> str | None:
    """The class an annotation names (``Foo``, ``mod.Foo``, ``Foo | None``, ``"Foo"``)."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        for side in (annotation.left, annotation.right):
            if not (isinstance(side, ast.Constant) and side.value is None):
                return _annotated_class(side)
    if isinstance(annotation, ast.Subscript):
        # list[X], dict[K, X], X | None inside: the element type stands for the container
        # (methods of list/dict are not project code, and iteration binds an X)
        inner = annotation.slice
        if isinstance(inner, ast.Tuple) and inner.elts:
            inner = inner.elts[-1]
        if isinstance(inner, ast.Constant) and inner.value is Ellipsis:
            return None
        return _annotated_class(inner)
    if isinstance(annotation, ast.Name):
        return annotation.id
    if isinstance(annotation, ast.Attribute):
        return annotation.attr
    return None


def _constructed_class(node: ast.AST | None) -> str | None:
    """``Foo(...)`` (or ``await Foo.create(...)``-free plain construction): ``Foo``."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id[:1].isupper():
            return func.id
        if isinstance(func, ast.Attribute) and func.attr[:1].isupper():
            return func.attr
    return None


def _client_value(node: ast.AST | None) -> str | None:
    """The AWS service whose client ``node`` evaluates to, if it is ``await x.s3()`` & co."""
    if isinstance(node, ast.Await):
        node = node.value
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    attr = node.func.attr
    if attr in AWS_SERVICES and not node.args:
        return attr
    if attr == "client" and node.args and isinstance(node.args[0], ast.Constant):
        value = node.args[0].value
        return value if value in AWS_SERVICES else None
    return None


def _receiver(node: ast.expr, fn: Function, class_clients: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return fn.clients.get(node.id)
    attribute = _self_attribute(node)
    return class_clients.get(attribute) if attribute else None


def _self_attribute(node: ast.expr) -> str | None:
    """``x`` when the expression is ``self.x``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == "self" else None
    return None


class CallGraph:
    """Every project function with the AWS calls and names it contains."""

    def __init__(self, root: Path = ROOT) -> None:
        self.modules = load_modules(root)
        self.functions: list[Function] = [
            fn for module in self.modules.values() for fn in _functions(module)
        ]
        self.by_name: dict[str, list[Function]] = defaultdict(list)
        for fn in self.functions:
            self.by_name[fn.name].append(fn)
        self.class_clients: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        self._analyse()

    def _analyse(self) -> None:
        self.classes: dict[str, list[Function]] = defaultdict(list)
        for fn in self.functions:
            if isinstance(fn.node, ast.ClassDef):
                self.classes[fn.qualname].append(fn)
        self.attr_types: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        for fn in self.functions:
            self._bind_types(fn)
        foreign = {name: _foreign_names(module.tree) for name, module in self.modules.items()}
        for fn in self.functions:
            own = self.attr_types[(fn.module, fn.cls)] if fn.cls else {}
            for node in _own_nodes(fn):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    fn.refs.add(node.id)
                elif isinstance(node, ast.Attribute):
                    aliases = self.modules[fn.module].aliases
                    if isinstance(node.value, ast.Name) and node.value.id in aliases:
                        fn.module_refs.add((aliases[node.value.id], node.attr))
                        continue
                    if isinstance(node.value, ast.Name) and node.value.id in foreign[fn.module]:
                        continue  # ``Resource.create``: a library's attribute, no project code
                    receiver = self._receiver_class(node.value, fn, own)
                    if receiver is None:
                        if node.attr not in CONTAINER_METHODS:
                            fn.attr_refs.add(node.attr)
                    else:
                        fn.typed_refs.add((receiver, node.attr))
        # Clients: local assignments and self attributes, then arguments, to a fixed point.
        changed = True
        while changed:
            changed = False
            for fn in self.functions:
                changed |= self._bind_clients(fn)
        for fn in self.functions:
            self._find_calls(fn)

    def _bind_types(self, fn: Function) -> None:
        own = self.attr_types[(fn.module, fn.cls)] if fn.cls else {}
        for node in _own_nodes(fn):
            target: ast.expr | None = None
            named: str | None = None
            if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                iterated = node.iter
                if (
                    isinstance(iterated, ast.Call)
                    and isinstance(iterated.func, ast.Attribute)
                    and iterated.func.attr == "values"
                ):
                    iterated = iterated.func.value
                named = self._receiver_class(iterated, fn, own)
                if named and isinstance(node.target, ast.Name):
                    fn.types[node.target.id] = named
                continue
            if isinstance(node, ast.AnnAssign):
                target, named = node.target, _annotated_class(node.annotation)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                named = _constructed_class(node.value)
                if named is None and isinstance(node.value, ast.Name):
                    named = fn.types.get(node.value.id)
            if target is None or named is None:
                continue
            if isinstance(target, ast.Name):
                if isinstance(fn.node, ast.ClassDef):
                    own[target.id] = named  # class-level annotation of an attribute
                else:
                    fn.types[target.id] = named
            elif (
                fn.cls
                and isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                own.setdefault(target.attr, named)

    def _receiver_class(self, node: ast.expr, fn: Function, own: dict[str, str]) -> str | None:
        """The class of a receiver expression when the code says it (else None)."""
        if isinstance(node, ast.Name):
            if node.id == "self" and fn.cls and fn.is_method:
                return fn.cls
            return fn.types.get(node.id)
        attribute = _self_attribute(node)
        return own.get(attribute) if attribute else None

    def methods_of(self, cls: str, name: str, modules: set[str]) -> list[Function] | None:
        """The project methods ``cls.name`` may run; None when ``cls`` is a Protocol or not
        known well enough to say (then every method of that name counts)."""
        bodies = [b for b in self.classes.get(cls, []) if b.module in modules]
        if not bodies:
            return [] if cls not in self.classes else None
        found: list[Function] = []
        for body in bodies:
            assert isinstance(body.node, ast.ClassDef)
            bases = [_annotated_class(b) for b in body.node.bases]
            if "Protocol" in bases or "ABC" in bases:
                return None
            own = [
                f for f in self.by_name.get(name, []) if f.cls == cls and f.module == body.module
            ]
            if own:
                found += own
                continue
            for base in bases:
                if base is None or base in ("object", "Generic"):
                    continue
                inherited = self.methods_of(base, name, modules)
                if inherited is None:
                    return None
                found += inherited
        return found

    def _bind_clients(self, fn: Function) -> bool:
        changed = False
        own = self.class_clients[(fn.module, fn.cls)] if fn.cls else {}
        for node in _own_nodes(fn):
            targets: list[ast.expr] = []
            value: ast.AST | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign):
                targets, value = [node.target], node.value
            service = _client_value(value) or (
                _receiver(value, fn, own) if isinstance(value, ast.expr) else None
            )
            if service is not None:
                for target in targets:
                    if isinstance(target, ast.Name) and fn.clients.get(target.id) != service:
                        fn.clients[target.id] = service
                        changed = True
                    elif (
                        fn.cls
                        and isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "self"
                        and own.get(target.attr) != service
                    ):
                        own[target.attr] = service
                        changed = True
            if isinstance(node, ast.Call):
                changed |= self._pass_clients(fn, own, node)
        return changed

    def _callees(self, call: ast.Call) -> list[Function]:
        """Project functions a call may run (a class called runs its ``__init__``)."""
        if isinstance(call.func, ast.Name):
            name = call.func.id
            plain = [f for f in self.by_name.get(name, []) if f.cls is None]
            return plain + [f for f in self.by_name.get("__init__", []) if f.cls == name]
        if isinstance(call.func, ast.Attribute):
            return [f for f in self.by_name.get(call.func.attr, []) if f.cls is not None]
        return []

    def _pass_clients(self, fn: Function, own: dict[str, str], call: ast.Call) -> bool:
        """Parameters that receive a client become clients in the callee."""
        changed = False
        for callee in self._callees(call):
            offset = 1 if callee.is_method else 0  # self
            passed = [(index + offset, arg) for index, arg in enumerate(call.args)]
            for position, arg in passed:
                service = _receiver(arg, fn, own)
                if service and position < len(callee.params):
                    param = callee.params[position]
                    changed |= callee.clients.get(param) != service
                    callee.clients[param] = service
            for keyword in call.keywords:
                service = _receiver(keyword.value, fn, own)
                if service and keyword.arg in callee.params:
                    changed |= callee.clients.get(keyword.arg) != service
                    callee.clients[keyword.arg] = service
        return changed

    def _find_calls(self, fn: Function) -> None:
        own = self.class_clients[(fn.module, fn.cls)] if fn.cls else {}
        for node in _own_nodes(fn):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            service = _receiver(node.func.value, fn, own)
            if service is None:
                continue
            method = node.func.attr
            if method in ("get_paginator", "get_waiter") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    fn.calls.add((service, self._named_operation(service, method, arg.value)))
                elif isinstance(arg, ast.Name) and arg.id in fn.params:
                    fn.op_params[fn.params.index(arg.id)] = (service, method)
            elif method in operations(service):
                fn.calls.add((service, operations(service)[method]))
        # string arguments that name a paginator/waiter of a callee
        for node in _own_nodes(fn):
            if not isinstance(node, ast.Call):
                continue
            for callee in self._callees(node):
                offset = 1 if callee.is_method else 0
                for index, arg in enumerate(node.args):
                    key = index + offset
                    if (
                        key in callee.op_params
                        and isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str)
                    ):
                        service, method = callee.op_params[key]
                        fn.calls.add((service, self._named_operation(service, method, arg.value)))

    @staticmethod
    def _named_operation(service: str, method: str, value: str) -> str:
        if method == "get_waiter":
            return waiter_operation(service, value)
        ops = operations(service)
        return ops.get(value) or ops.get(xform_name(value)) or value

    # --- reachability -----------------------------------------------------------------------
    def reach(
        self, roots: list[Function], modules: set[str], excluded: frozenset[str] = frozenset()
    ) -> dict[int, Reached]:
        """Every function reachable from ``roots`` (by id), with how it was reached;
        ``excluded`` names (``module:Class`` or ``module:function``) are never entered."""
        reached: dict[int, Reached] = {id(fn): Reached(fn, None, "") for fn in roots}
        todo = list(roots)

        def visit(target: Function, parent: Function, via: str) -> None:
            owner = f"{target.module}:{target.cls or target.qualname}"
            if owner in excluded:
                return
            if target.module in modules and id(target) not in reached:
                reached[id(target)] = Reached(target, parent, via)
                todo.append(target)

        while todo:
            fn = todo.pop()
            for cls, attr in sorted(fn.typed_refs):
                methods = self.methods_of(cls, attr, modules)
                if methods is None:
                    methods = [f for f in self.by_name.get(attr, []) if f.is_method]
                for method in methods:
                    visit(method, fn, f"{cls}.{attr}")
            for module, name in sorted(fn.module_refs):
                for target in self.by_name.get(name, []):
                    if target.module == module and (target.cls is None or target.cls == name):
                        visit(target, fn, f"{module}.{name}")
            for attr in sorted(fn.attr_refs):
                for target in self.by_name.get(attr, []):
                    if target.is_method:
                        visit(target, fn, f"?.{attr}")
            for name in sorted(fn.refs):
                # a bare name is a function or class of the project (methods need a receiver)
                for target in self.by_name.get(name, []):
                    if target.cls is None:
                        visit(target, fn, name)
                # a class reached: its body and the methods Python calls implicitly
                for body in self.classes.get(name, []):
                    visit(body, fn, name)
                    for implicit in IMPLICIT:
                        for method in self.methods_of(name, implicit, modules) or []:
                            visit(method, fn, name)
        return reached


@dataclass(frozen=True)
class Reached:
    fn: Function
    parent: Function | None
    via: str


@dataclass(frozen=True)
class Component:
    """Something deployed with an IAM role of its own: a service package, or CLI commands run
    by a Job (named as ``module:function``)."""

    name: str
    package: str | None = None
    entry_points: tuple[str, ...] = ()
    # ``module:Class`` or ``module:function`` this component never runs where it has the
    # role, each with the reason (checked to still exist)
    excluded: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Usage:
    operations: frozenset[tuple[str, str]]
    tables: frozenset[str]


def table_specs(graph: CallGraph) -> dict[str, str]:
    """Variable name -> table name of every ``TableSpec`` in shared.resources."""
    found: dict[str, str] = {}
    resources = graph.modules.get("shared.resources")
    for node in resources.tree.body if resources else []:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "TableSpec"
        ):
            name = next(k.value for k in node.value.keywords if k.arg == "name")
            assert isinstance(name, ast.Constant)
            for target in node.targets:
                assert isinstance(target, ast.Name)
                found[target.id] = str(name.value)
    return found


def _roots(component: Component, graph: CallGraph) -> list[Function]:
    if component.package:
        return [
            fn
            for fn in graph.functions
            if fn.module == component.package or fn.module.startswith(component.package + ".")
        ]
    wanted = {tuple(e.split(":")) for e in component.entry_points}
    roots = [fn for fn in graph.functions if (fn.module, fn.qualname) in wanted]
    if len(roots) != len(wanted):
        raise LookupError(f"{component.name}: an entry point of {component.entry_points} is gone")
    return roots


def _excluded(component: Component, graph: CallGraph) -> frozenset[str]:
    known = {f"{fn.module}:{fn.cls or fn.qualname}" for fn in graph.functions}
    names = frozenset(name for name, _ in component.excluded)
    if not names <= known:
        raise LookupError(f"{component.name}: excluded code is gone: {sorted(names - known)}")
    return names


def usage(component: Component, graph: CallGraph | None = None) -> Usage:
    graph = graph or CallGraph()
    roots = _roots(component, graph)
    modules = import_closure({fn.module for fn in roots}, graph.modules)
    reached = [r.fn for r in graph.reach(roots, modules, _excluded(component, graph)).values()]
    specs = table_specs(graph)
    tables: set[str] = set()
    for fn in reached:
        if "TABLES" in fn.refs and fn.qualname != "<module>":
            tables.update(specs.values())
        tables.update(specs[name] for name in fn.refs & specs.keys())
    calls = frozenset(call for fn in reached for call in fn.calls)
    uses_dynamodb = any(service == "dynamodb" for service, _ in calls)
    return Usage(calls, frozenset(tables) if uses_dynamodb else frozenset())


def explain(component: Component, operation: str, graph: CallGraph | None = None) -> list[str]:
    """How ``component`` reaches ``operation`` (e.g. ``StopLabelingJob``): one call chain per
    function that calls it, entry point first."""
    graph = graph or CallGraph()
    roots = _roots(component, graph)
    modules = import_closure({fn.module for fn in roots}, graph.modules)
    reached = graph.reach(roots, modules, _excluded(component, graph))
    by_fn = {id(r.fn): r for r in reached.values()}
    chains = []
    for entry in reached.values():
        if not any(op == operation for _, op in entry.fn.calls):
            continue
        steps = []
        current: Reached | None = entry
        while current is not None:
            steps.append(f"{current.fn.module}:{current.fn.qualname}")
            if current.via:
                steps.append(f"  (via {current.via})")
            current = by_fn.get(id(current.parent)) if current.parent else None
        chains.append(" <- ".join(s for s in steps if not s.startswith("  ")))
    return chains
