#!/usr/bin/env python3
"""cg_costs.py CALLGRIND_OUT FN...: for each function named FN, prints
`FN calls=N self=IR incl=IR` from a callgrind output file (event Ir).

calls: calls into FN seen while collecting; self: instructions in FN's own
code; incl: self plus everything it called. A name matches every object's
function of that name (callgrind's name compression is undone here)."""
import re
import sys


def parse(path):
    names = {}            # (kind, id) -> name
    self_ir = {}
    incl_calls = {}       # inclusive cost of calls made from fn
    ncalls = {}
    fn = None
    pending = None        # callee name after a calls= line
    cfn = None
    num = re.compile(r'^[0-9+\-*]')

    def name(kind, v):
        m = re.match(r'\((\d+)\)(?:\s+(.*))?$', v.strip())
        if not m:
            return v.strip()
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), v.strip())

    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if not line:
                continue
            if num.match(line):
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending is not None:
                    incl_calls[fn] = incl_calls.get(fn, 0) + cost
                    pending = None
                else:
                    self_ir[fn] = self_ir.get(fn, 0) + cost
                continue
            key, _, val = line.partition('=')
            if key == 'fn':
                fn = name('fn', val)
            elif key == 'cfn':
                cfn = name('fn', val)
            elif key == 'calls':
                n = int(val.split()[0])
                ncalls[cfn] = ncalls.get(cfn, 0) + n
                pending = cfn
            elif key in ('ob', 'cob', 'fl', 'fi', 'fe', 'cfi', 'cfl'):
                name(key if key in ('ob', 'cob') else 'fl', val)
    return self_ir, incl_calls, ncalls


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    self_ir, incl_calls, ncalls = parse(sys.argv[1])
    for fn in sys.argv[2:]:
        s = self_ir.get(fn, 0)
        print('%s calls=%d self=%d incl=%d' % (
            fn, ncalls.get(fn, 0), s, s + incl_calls.get(fn, 0)))


main()
