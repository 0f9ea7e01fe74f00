# Prints every event of the CTF trace at argv[1] as babeltrace2's Python bindings (python3-bt2)
# decode it, one line each, in babeltrace2's order (time, merged over CPUs):
#   TS CPU NAME pid=P tid=T field=VALUE ...
# TS the clock value (ns), integers in decimal, strings as they are (no spaces expected), arrays
# as their elements joined by ',' (babeltrace2 reads a comm, UTF8 bytes, as a string). The recorder's kernel
# tests (tests/bpf/test_rec_workload.c, test_rec_groups.c) parse it. Run with /usr/bin/python3.
import sys

import bt2


def val(f):
    c = f.cls
    if isinstance(c, bt2._IntegerFieldClassConst):
        return str(int(f))
    if isinstance(c, bt2._StringFieldClassConst):
        return str(f)
    if isinstance(c, bt2._ArrayFieldClassConst):
        return ",".join(val(e) for e in f)
    return "?"


for m in bt2.TraceCollectionMessageIterator(sys.argv[1]):
    if type(m) is bt2._EventMessageConst:
        e = m.event
        ctx = e.common_context_field
        fields = " ".join("%s=%s" % (k, val(v)) for k, v in e.payload_field.items())
        print(m.default_clock_snapshot.value, e.packet.context_field["cpu_id"], e.name,
              "pid=%d tid=%d" % (int(ctx["_pid"] if "_pid" in ctx else ctx["pid"]),
                                 int(ctx["_tid"] if "_tid" in ctx else ctx["tid"])), fields)
