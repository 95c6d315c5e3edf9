#!/usr/bin/env python3
"""scripts/callgraph.py [--dot] [DIR] -- who calls whom between the C files
of the extension (default DIR: extension/src), and the call cycles among
them.

A file A *calls* file B when a function defined in A calls a function
defined (not static) in B.  The files then form a graph; a set of files
that reach each other is a cycle, which the engine's layering forbids (the
job store calls nothing above it; the worker's loop is above every kind).
Prints each file's callees, then every cycle (strongly connected set of two
files or more); exits 1 if there is a cycle, 0 if none.  --dot prints the
graph in Graphviz's dot language instead.

It reads the code as text, with PostgreSQL's layout in mind (a function's
name at the start of a line, its body from a '{' at the start of a line to
the next '}' there); macros and calls through pointers are not seen.
"""
import os
import re
import sys

DEF_RE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)\(([^;]*)$')
CALL_RE = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\s*\(')


def strip_comments_and_strings(text):
    text = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(\\.|[^'\\])*'", "''", text)
    return text


def functions(path):
    """yields (name, is_static, body) for every function defined in path"""
    lines = strip_comments_and_strings(open(path, encoding='utf-8', errors='replace').read()).split('\n')
    i = 0
    while i < len(lines):
        m = DEF_RE.match(lines[i])
        if m and i > 0 and lines[i - 1].strip() and not lines[i - 1].rstrip().endswith(';'):
            name = m.group(1)
            static = lines[i - 1].lstrip().startswith('static') or \
                (i > 1 and lines[i - 2].lstrip().startswith('static'))
            j = i
            while j < len(lines) and lines[j] != '{':
                if lines[j].rstrip().endswith(';'):
                    break
                j += 1
            if j < len(lines) and lines[j] == '{':
                k = j + 1
                while k < len(lines) and lines[k] != '}':
                    k += 1
                yield name, static, '\n'.join(lines[j:k])
                i = k
        i += 1


def graph(src):
    files = sorted(f for f in os.listdir(src) if f.endswith('.c'))
    defined = {}        # function -> file (non-static)
    bodies = {}         # file -> [body]
    for f in files:
        bodies[f] = []
        for name, static, body in functions(os.path.join(src, f)):
            if not static:
                defined.setdefault(name, f)
            bodies[f].append(body)
    edges = {f: {} for f in files}
    for f in files:
        for body in bodies[f]:
            for callee in CALL_RE.findall(body):
                g = defined.get(callee)
                if g and g != f:
                    edges[f].setdefault(g, set()).add(callee)
    return files, edges


def cycles(files, edges):
    """Tarjan's strongly connected components of two files or more"""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in files:
        if v not in index:
            visit(v)
    return out


def main(argv):
    dot = '--dot' in argv
    args = [a for a in argv if a != '--dot']
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    src = args[0] if args else os.path.join(root, 'extension', 'src')
    files, edges = graph(src)
    if dot:
        print('digraph pg_mig {')
        for f in files:
            for g in sorted(edges[f]):
                print('  "%s" -> "%s";' % (f, g))
        print('}')
        return 0
    for f in files:
        callees = ', '.join('%s (%s)' % (g, ', '.join(sorted(edges[f][g])[:3]) +
                                          (', ...' if len(edges[f][g]) > 3 else ''))
                            for g in sorted(edges[f]))
        print('%s -> %s' % (f, callees or '(none)'))
    found = cycles(files, edges)
    print()
    if not found:
        print('no call cycle between files')
        return 0
    for comp in found:
        print('call cycle among %d files: %s' % (len(comp), ' '.join(comp)))
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
