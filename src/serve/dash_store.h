/*
 * Dashboards on disk: named JSON documents (the web UI's saved views, docs/api.md
 * "Dashboards"), one file each in DATA/dashboards/:
 *
 *   NAME.json           a dashboard of the operator's scope
 *   TENANT@NAME.json    a dashboard of tenant TENANT's scope
 *
 * Neither a tenant name nor a dashboard name can hold '@', so the scopes' files never meet.
 * Every write goes to NAME.json.tmp, is fsync'd, renamed over the file and the directory is
 * fsync'd: a crash (kill -9) leaves the old document or the new one, never a torn one (a
 * stale .tmp is ignored and overwritten by the next write). Nothing is cached: every read is
 * the file's.
 *
 * The store checks names and counts; what a document holds is the API's business
 * (src/api/dashboards.c). Thread-safe: writes of one process are serialized by a mutex.
 */
#ifndef SN_SERVE_DASH_STORE_H
#define SN_SERVE_DASH_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SN_DASH_NAME_MAX   64          /* characters of a dashboard's name */
#define SN_DASH_PER_SCOPE  100         /* dashboards a scope may keep */
#define SN_DASH_PANELS_MAX 24          /* panels of a dashboard */
#define SN_DASH_BODY_MAX   (64 * 1024) /* bytes of a PUT's body */

/* Whether name is 1 to SN_DASH_NAME_MAX of [A-Za-z0-9._-], not starting with '.'. */
bool sn_dash_name_ok(const char *name);

/* Writes doc (borrowed) as dashboard name of scope ("" for the operator's), replacing any.
 * *created tells whether it is new. Returns 0, -EINVAL (bad name), -EDQUOT (the scope has
 * SN_DASH_PER_SCOPE already and this one is new), -ENOMEM or -errno of the file system. */
int sn_dash_put(const char *datadir, const char *scope, const char *name, const json_t *doc,
                bool *created);
/* The dashboard, parsed: returns owned in *out (json_decref it). -ENOENT when there is none
 * (or the name is invalid), -EIO when its file does not parse. */
int sn_dash_get(const char *datadir, const char *scope, const char *name, json_t **out);
/* Deletes it: 0 or -ENOENT. */
int sn_dash_delete(const char *datadir, const char *scope, const char *name);
/* The names of scope's dashboards, sorted: an owned JSON array of strings in *out. Returns 0
 * (an empty array when there are none) or -ENOMEM. */
int sn_dash_names(const char *datadir, const char *scope, json_t **out);

#endif
