/*
 * A tar archive (POSIX ustar) of a directory tree, in memory: how the recorder's snapshots
 * leave the server (GET /ca/recorder/snapshots/:id/archive) and are unpacked by `sonde record
 * snapshot -o DIR`. Regular files and directories only; names relative to the directory.
 * Written here rather than with a library: ustar is 512-byte headers and zero padding.
 */
#ifndef SN_CORE_TAR_H
#define SN_CORE_TAR_H

#include <stddef.h>

/* The archive of every regular file and directory under dir (hidden ones skipped, sorted by
 * name) into *out (malloc'd) and *len. Returns 0, -ENAMETOOLONG (a name over ustar's 255
 * bytes), -EFBIG (a file of 8 GiB or more), or -errno. */
int sn_tar_dir(const char *dir, unsigned char **out, size_t *len);

/* Unpacks archive buf[0..len) (regular files and directories; as sn_tar_dir writes) into dir,
 * which is created when absent. Names with "..", absolute names, other entry kinds and bad
 * checksums are refused (-EINVAL) before anything of that entry is written. Returns the number
 * of files written, or -errno. */
long sn_tar_extract(const unsigned char *buf, size_t len, const char *dir);

#endif
