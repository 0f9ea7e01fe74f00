# Prints every event of the CTF trace at argv[1] as babeltrace2's Python bindings (python3-bt2)
# decode it: "TS CPU NAME field:KIND=VALUE ...", KIND the field class's signedness and size
# (u32, i64; x64 for a hexadecimal one), so tests/unit/test_ctf_trace.c holds the recorder's
# field types, not only the values the text sink prints. Run with Debian's /usr/bin/python3.
import sys

import bt2


def desc(f):
    c = f.cls
    if isinstance(c, bt2._IntegerFieldClassConst):
        unsigned = isinstance(c, bt2._UnsignedIntegerFieldClassConst)
        k = ("x" if c.preferred_display_base == 16 else "u" if unsigned else "i")
        return "%s%d=%d" % (k, c.field_value_range, int(f))
    if isinstance(c, bt2._StringFieldClassConst):
        return "str=%s" % str(f)
    if isinstance(c, bt2._ArrayFieldClassConst):
        return "[" + ",".join(desc(e) for e in f) + "]"
    return "?"


for m in bt2.TraceCollectionMessageIterator(sys.argv[1]):
    if type(m) is bt2._EventMessageConst:
        e = m.event
        fields = " ".join("%s:%s" % (k, desc(v)) for k, v in e.payload_field.items())
        print(m.default_clock_snapshot.value, e.packet.context_field["cpu_id"], e.name, fields)
