/*
 * Error codes shared by every Sonde module.
 *
 * Action functions return int: 0 on success, a negative errno (-ENOMEM, -EINVAL, ...) or one
 * of Sonde's own codes below on failure. Sonde's codes sit in a reserved range far below any
 * errno value (as LMDB does), so one int carries both. sn_strerror() names either kind.
 */
#ifndef SN_CORE_ERR_H
#define SN_CORE_ERR_H

#define SN_OK 0

/* Sonde's own codes: -30000 and below. */
#define SN_E_BASE      (-30000)
#define SN_E_CORRUPT   (-30000) /* malformed input: bad tag, bad length, bad character */
#define SN_E_TRUNCATED (-30001) /* input ends before the structure it announces */
#define SN_E_TRAILING  (-30002) /* bytes left over after a complete structure (strict mode) */
#define SN_E_BUCKET    (-30003) /* an invalid histogram bucket (strict mode) */
#define SN_E_ORDER     (-30004) /* buckets unsorted or repeated (strict mode) */
#define SN_E_ZERO      (-30005) /* a zero count where the format forbids it (strict mode) */
#define SN_E_LAST      (-30005)

/*
 * Returns a static, human-readable description of rc: Sonde's own code, or strerror(-rc) for
 * a negative errno, or "success" for 0. Never returns NULL. Thread-safe.
 */
const char *sn_strerror(int rc);

#endif
