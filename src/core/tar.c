/*
 * ustar archives of a directory tree (core/tar.h): write one in memory, unpack one safely.
 */
#include "core/tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"

#define BLK 512u

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static int reserve(struct buf *b, size_t more)
{
    unsigned char *p = sn_grow(b->p, &b->cap, b->len + more, 1);
    if (!p)
        return -ENOMEM;
    b->p = p;
    return 0;
}

/* v as width - 1 octal digits and a NUL (v fits: sizes are checked against 8 GiB). */
static void octal(char *field, size_t width, uint64_t v)
{
    field[width - 1] = 0;
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

static unsigned sum(const unsigned char *h)
{
    unsigned s = 0;
    for (unsigned i = 0; i < BLK; i++)
        s += (i >= 148 && i < 156) ? ' ' : h[i];
    return s;
}

/* A header for name (a directory when dir) of size bytes. */
static int header(struct buf *b, const char *name, bool dir, uint64_t size, long mtime)
{
    size_t n = strlen(name);
    const char *base = name;
    size_t plen = 0;
    int rc;

    if (size >= (1ULL << 33))
        return -EFBIG; /* ustar's 11 octal digits */
    if (n > 100) {     /* split at a '/' into prefix (<= 155) and name (<= 100) */
        const char *cut = NULL;
        for (const char *p = name; *p; p++)
            if (*p == '/' && (size_t)(p - name) <= 155 && n - (size_t)(p - name) - 1 <= 100)
                cut = p;
        if (!cut)
            return -ENAMETOOLONG;
        plen = (size_t)(cut - name);
        base = cut + 1;
    }
    if ((rc = reserve(b, BLK)) != 0)
        return rc;
    unsigned char *h = b->p + b->len;
    memset(h, 0, BLK);
    memcpy(h, base, strlen(base));
    octal((char *)h + 100, 8, dir ? 0755 : 0644);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, (uint64_t)(mtime > 0 ? mtime : 0));
    h[156] = dir ? '5' : '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 345, name, plen);
    octal((char *)h + 148, 7, sum(h)); /* 6 digits, NUL, space */
    h[155] = ' ';
    b->len += BLK;
    return 0;
}

static int file(struct buf *b, const char *path, const char *name, const struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -errno;
    size_t size = (size_t)st->st_size, pad = (BLK - size % BLK) % BLK;
    if ((rc = header(b, name, false, size, st->st_mtime)) == 0 &&
        (rc = reserve(b, size + pad)) == 0) {
        size_t got = 0;
        while (got < size) {
            ssize_t k = read(fd, b->p + b->len + got, size - got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                rc = k < 0 ? -errno : -EIO; /* the file shrank under us */
                break;
            }
            got += (size_t)k;
        }
        if (rc == 0) {
            memset(b->p + b->len + size, 0, pad);
            b->len += size + pad;
        }
    }
    close(fd);
    return rc;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the entries of dir (rel: its name in the archive, "" at the top). */
static int walk(struct buf *b, const char *dir, const char *rel, int depth)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!d)
        return -errno;
    if (depth > 16) {
        closedir(d);
        return -ELOOP;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char **p = sn_grow(names, &cap, n + 1, sizeof(*names));
        if (!p || !(p[n] = strdup(e->d_name))) {
            names = p ? p : names;
            rc = -ENOMEM;
            break;
        }
        names = p;
        n++;
    }
    closedir(d);
    if (rc == 0)
        qsort(names, n, sizeof(*names), cmp);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096], name[4096];
        struct stat st;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path) ||
            (size_t)snprintf(name, sizeof(name), "%s%s%s", rel, *rel ? "/" : "", names[i]) > 255) {
            rc = -ENAMETOOLONG;
            break;
        }
        if (lstat(path, &st) != 0) {
            rc = -errno;
        } else if (S_ISDIR(st.st_mode)) {
            char dname[4100];
            snprintf(dname, sizeof(dname), "%s/", name);
            if (strlen(dname) > 255)
                rc = -ENAMETOOLONG;
            else if ((rc = header(b, dname, true, 0, st.st_mtime)) == 0)
                rc = walk(b, path, name, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            rc = file(b, path, name, &st);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int sn_tar_dir(const char *dir, unsigned char **out, size_t *len)
{
    struct buf b = {0};
    int rc = walk(&b, dir, "", 0);

    if (rc == 0 && (rc = reserve(&b, 2 * BLK)) == 0) { /* the end: two zero blocks */
        memset(b.p + b.len, 0, 2 * BLK);
        b.len += 2 * BLK;
    }
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* An octal field of width bytes (NUL- or space-terminated): false when malformed. */
static bool get_octal(const unsigned char *f, size_t width, uint64_t *v)
{
    size_t i = 0;
    *v = 0;
    while (i < width && f[i] == ' ')
        i++;
    if (i == width || f[i] < '0' || f[i] > '7')
        return false;
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
        if (*v >> 60)
            return false;
        *v = *v * 8 + (f[i] - '0');
    }
    return i == width || f[i] == 0 || f[i] == ' ';
}

/* Whether name is relative and has no ".." component nor an empty one inside ("." is kept: GNU
 * tar writes "./kernel/metadata" for `tar -cf F .`). */
static bool safe_name(const char *name)
{
    if (!*name || *name == '/')
        return false;
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || (n == 0 && slash))
            return false;
        p += n + (slash != NULL);
    }
    return true;
}

/* mkdir -p of dir/rel (rel's last component included when whole). */
static int mkdirs(const char *dir, const char *rel, bool whole)
{
    char path[4400];
    size_t dl = strlen(dir);

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path))
        return -ENAMETOOLONG;
    for (char *p = path + dl + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    if (whole && mkdir(path, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

long sn_tar_extract(const unsigned char *buf, size_t len, const char *dir)
{
    long files = 0;
    size_t off = 0;
    int rc;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    while (off + BLK <= len) {
        const unsigned char *h = buf + off;
        char name[257];
        uint64_t size, chk;
        bool zero = true;

        for (unsigned i = 0; i < BLK && zero; i++)
            zero = h[i] == 0;
        if (zero)
            return files; /* the end */
        if (!get_octal(h + 148, 8, &chk) || chk != sum(h) || !get_octal(h + 124, 12, &size))
            return -EINVAL;
        size_t pl = strnlen((const char *)h + 345, 155), nl = strnlen((const char *)h, 100);
        name[0] = 0;
        if (memcmp(h + 257, "ustar", 5) == 0 && pl) {
            memcpy(name, h + 345, pl);
            name[pl] = '/';
            pl++;
        } else {
            pl = 0;
        }
        memcpy(name + pl, h, nl);
        name[pl + nl] = 0;
        bool isdir = h[156] == '5';
        size_t n = strlen(name);
        if (isdir && n > 1 && name[n - 1] == '/')
            name[n - 1] = 0;
        if (!safe_name(name) || (h[156] != '0' && h[156] != 0 && !isdir) || size > len - off - BLK)
            return -EINVAL;
        off += BLK;
        if (isdir) {
            if ((rc = mkdirs(dir, name, true)) != 0)
                return rc;
            continue;
        }
        char path[4400];
        if ((rc = mkdirs(dir, name, false)) != 0)
            return rc;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
        for (size_t put = 0; put < size;) {
            ssize_t k = write(fd, buf + off + put, size - put);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                rc = k < 0 ? -errno : -EIO;
                close(fd);
                return rc;
            }
            put += (size_t)k;
        }
        if (close(fd) != 0)
            return -errno;
        files++;
        size_t padded = (size_t)(size + BLK - 1) / BLK * BLK;
        off += padded < len - off ? padded : len - off;
    }
    return off == len ? files : -EINVAL;
}
