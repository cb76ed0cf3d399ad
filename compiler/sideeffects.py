"""Side-effect order: function calls that write their arguments leave the expressions they are in.

P4 evaluates an expression left to right and a call copies its out/inout arguments back when it
returns. Both back-ends print an expression as one expression, so a function call with out or
inout arguments inside an expression (or as an assignment's value) is moved before its statement
into a fresh variable, and the operands evaluated before it are saved first:
``x = a + f(a)`` becomes ``t1 = a; t2 = f(a); x = t1 + t2``; the right operand of ``&&``/``||``
and the branches of ``?:`` become if statements, so such a call runs only when P4 evaluates it.
The typed statements come out in
the same typed AST the back-ends read (``MethodCallStatement.result`` names the variable that
receives the call's value).
"""
from __future__ import annotations

from typing import Callable

from fabriclab.compiler import ast


def writes_arguments(call: ast.MethodCall) -> bool:
    return getattr(call, "kind", None) == "function" and any(
        p.direction in ("out", "inout") for _, p in getattr(call, "matched_args", []))


def has_writing_call(e: ast.Node | None) -> bool:
    return e is not None and any(isinstance(n, ast.MethodCall) and writes_arguments(n) for n in ast.walk(e))


class Hoister:
    """Rewrites one statement's expressions; ``pending`` gets the statements to run before it.

    ``new_var(type, loc)`` returns a fresh ``ast.Name`` of a new local variable (typed, with its
    ``ref``) and the ``ast.VariableDecl`` that declares it.
    """

    def __init__(self, new_var: Callable):
        self.new_var = new_var
        self.pending: list[ast.Node] = []

    def statement(self, s: ast.Node) -> None:
        if isinstance(s, ast.AssignmentStatement):
            self.lvalue(s.target)        # the target's indices are evaluated before the value
            s.value = self.expr(s.value)
        elif isinstance(s, ast.MethodCallStatement):
            self.children(s.call)
        elif isinstance(s, ast.IfStatement):
            s.cond = self.expr(s.cond)
        elif isinstance(s, ast.VariableDecl) and s.init is not None:
            s.init = self.expr(s.init)
        elif isinstance(s, ast.ReturnStatement) and s.value is not None:
            s.value = self.expr(s.value)
        elif isinstance(s, ast.SwitchStatement):
            s.expr = self.expr(s.expr)

    def lvalue(self, e: ast.Expression) -> None:
        if isinstance(e, ast.ArrayIndex):
            self.lvalue(e.expr)
            e.index = self.expr(e.index)
        elif isinstance(e, (ast.Member, ast.Slice)):
            self.lvalue(e.expr)

    def expr(self, e: ast.Expression) -> ast.Expression:
        if not has_writing_call(e):
            return e
        if isinstance(e, ast.Binary) and e.op in ("&&", "||") and has_writing_call(e.right):
            # the right operand runs only when the left one does not decide
            left = self.expr(e.left)
            name, decl = self.new_var(e.checked_type, e.loc)
            decl.init = left
            self.pending.append(decl)
            test = self.copy_name(name) if e.op == "&&" else self.negation(self.copy_name(name))
            self.pending.append(self.conditional(test, [(self.copy_name(name), e.right)]))
            return name
        if isinstance(e, ast.Ternary) and (has_writing_call(e.then) or has_writing_call(e.otherwise)):
            cond = self.expr(e.cond)
            name, decl = self.new_var(e.checked_type, e.loc)
            self.pending.append(decl)
            self.pending.append(self.conditional(cond, [(self.copy_name(name), e.then)],
                                                 [(self.copy_name(name), e.otherwise)]))
            return name
        self.children(e)
        if isinstance(e, ast.MethodCall) and writes_arguments(e):
            name, decl = self.new_var(e.checked_type, e.loc)
            self.pending.append(decl)
            self.pending.append(ast.MethodCallStatement(loc=e.loc, call=e, result=name))
            return name
        return e

    def conditional(self, cond: ast.Expression, then: list, otherwise: list | None = None) -> ast.IfStatement:
        """``if (cond) { target = value; } [else {...}]``, each value with its own hoisted calls."""
        def branch(assignments):
            inner = Hoister(self.new_var)
            body = []
            for target, value in assignments:
                value = inner.expr(value)
                body += inner.pending
                inner.pending = []
                body.append(ast.AssignmentStatement(loc=value.loc, target=target, value=value))
            return ast.BlockStatement(loc=cond.loc, statements=body)
        return ast.IfStatement(loc=cond.loc, cond=cond, then=branch(then),
                               otherwise=branch(otherwise) if otherwise else None)

    @staticmethod
    def negation(name: ast.Name) -> ast.Unary:
        e = ast.Unary(loc=name.loc, op="!", operand=name)
        e.checked_type = name.checked_type
        return e

    @staticmethod
    def copy_name(name: ast.Name) -> ast.Name:
        """Another use of a hoisted variable (every node has one parent)."""
        copy = ast.Name(loc=name.loc, name=name.name)
        copy.ref, copy.checked_type = name.ref, name.checked_type
        return copy

    def children(self, e: ast.Expression) -> None:
        slots = self.slots(e)
        for i, (get, put, saveable) in enumerate(slots):
            child = get()
            if has_writing_call(child):
                put(self.expr(child))
            elif saveable and not hasattr(child, "const_value") and any(has_writing_call(g()) for g, _, _ in slots[i + 1:]):
                name, decl = self.new_var(child.checked_type, child.loc)
                decl.init = child
                self.pending.append(decl)
                put(name)

    @staticmethod
    def slots(e: ast.Expression) -> list:
        """(get, put, may be saved to a variable) for each operand, in evaluation order."""
        def slot(obj, attr, saveable=True):
            return (lambda: getattr(obj, attr), lambda v: setattr(obj, attr, v), saveable)

        if isinstance(e, ast.Binary):
            return [slot(e, "left"), slot(e, "right")]
        if isinstance(e, ast.Ternary):
            return [slot(e, "cond")]
        if isinstance(e, (ast.Unary,)):
            return [slot(e, "operand")]
        if isinstance(e, (ast.Cast, ast.Member, ast.Slice)):
            return [slot(e, "expr", False)]
        if isinstance(e, ast.ArrayIndex):
            return [slot(e, "expr", False), slot(e, "index")]
        if isinstance(e, ast.MethodCall):
            directions = {id(arg): p.direction for arg, p in getattr(e, "matched_args", [])}
            return [slot(arg, "value", directions.get(id(arg), "") in ("", "in")) for arg in e.args]
        if isinstance(e, ast.ListExpression):
            return [(lambda i=i: e.elements[i], lambda v, i=i: e.elements.__setitem__(i, v), True)
                    for i in range(len(e.elements))]
        if isinstance(e, ast.StructInitializer):
            return [slot(nf, "value") for nf in e.fields]
        return []
