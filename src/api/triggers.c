/*
 * The flight recorder's triggers in the API (docs/recorder.md, "Triggers"; operator only, at
 * /ca alone). The work is serve/triggers.h's; this file parses, checks and answers.
 *
 *   GET    /ca/recorder/triggers          [triggers]
 *   POST   /ca/recorder/triggers          {"name", "session", "instrumentation": ID, "when",
 *                                          "key"?, "min-interval"?, "post"?} -> 201 the trigger
 *   GET    /ca/recorder/triggers/fired    the fired list, oldest first
 *   GET    /ca/recorder/triggers/:name    the trigger, with its fired entries
 *   DELETE /ca/recorder/triggers/:name    -> 204
 *
 * A bad spec (malformed, an unknown instrumentation or session, a bad condition or number) is
 * 409 with CA's error shape and what is wrong; an unknown trigger 404.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"
#include "http/request.h"
#include "rec/recorder.h"
#include "serve/triggers.h"

/* Member m of j as a whole number in [0, max] into *v (absent: dflt). */
static bool uint_member(struct sn_call *c, json_t *j, const char *m, json_int_t max,
                        json_int_t dflt, uint64_t *v)
{
    json_t *x = json_object_get(j, m);
    if (!x) {
        *v = (uint64_t)dflt;
        return true;
    }
    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > max) {
        CA_INVAL(c, "\"%s\" must be a whole number from 0 to %lld", m, (long long)max);
        return false;
    }
    *v = (uint64_t)json_integer_value(x);
    return true;
}

static void create(struct sn_call *c)
{
    static const char *const members[] = {
        "name", "session", "instrumentation", "when", "key", "min-interval", "post"};
    json_error_t jerr;
    char why[256];
    json_t *j = json_loadb((const char *)c->req->body, c->req->body_len, 0, &jerr);
    const char *k;
    json_t *v;

    if (!j || !json_is_object(j)) {
        CA_INVAL(c, "the body must be a JSON object: %s", j ? "not an object" : jerr.text);
        json_decref(j);
        return;
    }
    json_object_foreach(j, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
            known |= strcmp(k, members[i]) == 0;
        if (!known) {
            CA_INVAL(c,
                     "unknown member \"%.64s\" (a trigger takes name, session, "
                     "instrumentation, when, key, min-interval, post)",
                     k);
            goto out;
        }
    }
    struct sn_trigger_spec sp = {
        .name = json_string_value(json_object_get(j, "name")),
        .session = json_string_value(json_object_get(j, "session")),
        .when = json_string_value(json_object_get(j, "when")),
        .key = json_string_value(json_object_get(j, "key")),
    };
    uint64_t ival, post;
    if (!sp.name || strcmp(sp.name, "fired") == 0) {
        CA_INVAL(c, "\"name\" must be a string (not \"fired\")");
        goto out;
    }
    if (!sp.session) {
        CA_INVAL(c, "\"session\" must name a recording session");
        goto out;
    }
    if (!sp.when) {
        CA_INVAL(c, "\"when\" must be a condition such as \"p99 > 10ms for 3s\"");
        goto out;
    }
    if (json_object_get(j, "key") && !sp.key) {
        CA_INVAL(c, "\"key\" must be a string: a key, or \"*\" for any key");
        goto out;
    }
    json_t *id = json_object_get(j, "instrumentation");
    if (!json_is_integer(id) || json_integer_value(id) < 1) {
        CA_INVAL(c, "\"instrumentation\" must be an instrumentation's id (a positive integer)");
        goto out;
    }
    sp.instn = (uint64_t)json_integer_value(id);
    if (!uint_member(c, j, "min-interval", SN_TRIGGER_IVAL_MAX, SN_TRIGGER_INTERVAL, &ival) ||
        !uint_member(c, j, "post", SN_TRIGGER_POST_MAX, SN_TRIGGER_POST, &post))
        goto out;
    sp.min_interval = (uint32_t)ival;
    sp.post = (uint32_t)post;
    int rc = sn_triggers_add(c->s->triggers, &sp, why, sizeof(why));
    if (rc == -ENOMEM)
        sn_resp_error(c->resp, 503, "ECA_NORESOURCE", "out of memory");
    else if (rc != 0)
        CA_INVAL(c, "%s", why);
    else
        sn_resp_json(c->resp, 201, sn_triggers_json(c->s->triggers, sp.name));
out:
    json_decref(j);
}

void sn_api_triggers(struct sn_call *c, const char *what, const char *arg)
{
    const char *m = c->req->method;

    if (strcmp(what, "list") == 0) {
        json_t *l = sn_triggers_json(c->s->triggers, NULL);
        sn_resp_json(c->resp, 200, l ? l : json_array());
    } else if (strcmp(what, "create") == 0) {
        create(c);
    } else if (strcmp(what, "fired") == 0) {
        json_t *l = sn_triggers_fired_json(c->s->triggers);
        sn_resp_json(c->resp, 200, l ? l : json_array());
    } else if (strcmp(m, "DELETE") == 0) {
        if (sn_triggers_remove(c->s->triggers, arg) != 0)
            return (void)sn_resp_error(c->resp, 404, "ResourceNotFound",
                                       "no such trigger \"%.64s\"", arg);
        sn_resp_empty(c->resp, 204);
    } else {
        json_t *t = sn_triggers_json(c->s->triggers, arg);
        if (!t)
            return (void)sn_resp_error(c->resp, 404, "ResourceNotFound",
                                       "no such trigger \"%.64s\"", arg);
        sn_resp_json(c->resp, 200, t);
    }
}
