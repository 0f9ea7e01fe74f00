/*
 * The CTF field kinds the recorder writes, one list shared by the metadata (tsdl.c prints a
 * kind's TSDL declaration) and the encoder (event_class.c writes a value of that kind), so the
 * two cannot disagree. Everything is little-endian and byte-packed (`align = 8` bits), as
 * lttng-modules writes on x86-64.
 */
#ifndef SN_CTF_FIELD_H
#define SN_CTF_FIELD_H

#include <stdint.h>

enum sn_ctf_kind {
    SN_CTF_U8 = 1, /* integer { size = 8; signed = 0; } */
    SN_CTF_I32,
    SN_CTF_U32,
    SN_CTF_I64,
    SN_CTF_U64,
    SN_CTF_X64,     /* 64 bits, unsigned, base = 16: pointers */
    SN_CTF_STRING,  /* string { encoding = UTF8; }: NUL-terminated */
    SN_CTF_COMM,    /* integer { size = 8; encoding = UTF8; } _name[16]: a task's comm */
    SN_CTF_ARGS6,   /* unsigned long _name[6]: syscall_*_unknown's args */
    SN_CTF_SEQ_I32, /* i32 _name[ __name_length ], after a U8 field named "_name_length" */
    SN_CTF_U16,
    SN_CTF_X8,     /* 8 bits, unsigned, base = 16: page faults' error_code */
    SN_CTF_ADDR16, /* integer { size = 8; base = 16; } _name[16]: an IPv6 address */
};

/* One field of an event's payload: its name without lttng's leading '_' (tsdl.c adds it). */
struct sn_ctf_field {
    const char *name;
    uint8_t kind; /* enum sn_ctf_kind */
};

#endif
