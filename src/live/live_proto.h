/*
 * The viewer side of LTTng's live reading protocol (lttng-tools' doc/live-reading-protocol.md),
 * version 2.4, as babeltrace2's lttng-live source speaks it: the wire structs, a big-endian
 * codec for them, and the parser that cuts a viewer's byte stream into commands.
 *
 * TCP; every integer big-endian, every struct packed. A viewer sends a 16-byte header
 * {u64 data_size; u32 cmd; u32 cmd_version} and data_size bytes of payload, then waits for the
 * answer. Sizes on the wire (checked by test_live_proto):
 *   command header 16, CONNECT 20, session 339, stream 4371, index 64,
 *   ATTACH request 20, GET_PACKET request 20, the other requests 8 (or none).
 * The parser knows each command's exact payload size and refuses any other (-EPROTO): a viewer
 * that sends a wrong length is a bad viewer, and the relay closes its connection.
 */
#ifndef SN_LIVE_PROTO_H
#define SN_LIVE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SN_LIVE_PORT  5344 /* relayd's default live port */
#define SN_LIVE_MAJOR 2
#define SN_LIVE_MINOR 4

#define SN_LIVE_CMD_HDR     16
#define SN_LIVE_CONNECT_LEN 20
#define SN_LIVE_SESSION_LEN 339
#define SN_LIVE_STREAM_LEN  4371
#define SN_LIVE_INDEX_LEN   64
#define SN_LIVE_CMD_MAX     20 /* the longest request payload */

#define SN_LIVE_HOST_NAME    64  /* session hostname[64] */
#define SN_LIVE_SESSION_NAME 255 /* session_name[255] */
#define SN_LIVE_PATH_NAME    4096
#define SN_LIVE_CHANNEL_NAME 255

enum sn_live_cmd_id {
    SN_LIVE_CONNECT = 1,
    SN_LIVE_LIST_SESSIONS = 2,
    SN_LIVE_ATTACH_SESSION = 3,
    SN_LIVE_GET_NEXT_INDEX = 4,
    SN_LIVE_GET_PACKET = 5,
    SN_LIVE_GET_METADATA = 6,
    SN_LIVE_GET_NEW_STREAMS = 7,
    SN_LIVE_CREATE_SESSION = 8,
    SN_LIVE_DETACH_SESSION = 9,
};

enum sn_live_conn_type { SN_LIVE_CLIENT_COMMAND = 1, SN_LIVE_CLIENT_NOTIFICATION = 2 };

/* ATTACH_SESSION's seek */
enum sn_live_seek { SN_LIVE_SEEK_BEGINNING = 1, SN_LIVE_SEEK_LAST = 2 };

enum sn_live_attach_status {
    SN_LIVE_ATTACH_OK = 1,
    SN_LIVE_ATTACH_ALREADY = 2,
    SN_LIVE_ATTACH_UNK = 3,
    SN_LIVE_ATTACH_NOT_LIVE = 4,
    SN_LIVE_ATTACH_SEEK_ERR = 5,
    SN_LIVE_ATTACH_NO_SESSION = 6,
};

enum sn_live_index_status {
    SN_LIVE_INDEX_OK = 1,
    SN_LIVE_INDEX_RETRY = 2,
    SN_LIVE_INDEX_HUP = 3,
    SN_LIVE_INDEX_ERR = 4,
    SN_LIVE_INDEX_INACTIVE = 5,
    SN_LIVE_INDEX_EOF = 6,
};
enum sn_live_index_flags { SN_LIVE_FLAG_NEW_METADATA = 1, SN_LIVE_FLAG_NEW_STREAM = 2 };

enum sn_live_packet_status {
    SN_LIVE_PACKET_OK = 1,
    SN_LIVE_PACKET_RETRY = 2,
    SN_LIVE_PACKET_ERR = 3,
    SN_LIVE_PACKET_EOF = 4,
};

enum sn_live_metadata_status {
    SN_LIVE_METADATA_OK = 1,
    SN_LIVE_METADATA_NO_NEW = 2,
    SN_LIVE_METADATA_ERR = 3,
};

enum sn_live_new_streams_status {
    SN_LIVE_NEW_STREAMS_OK = 1,
    SN_LIVE_NEW_STREAMS_NO_NEW = 2,
    SN_LIVE_NEW_STREAMS_ERR = 3,
    SN_LIVE_NEW_STREAMS_HUP = 4,
};

enum sn_live_create_status { SN_LIVE_CREATE_OK = 1, SN_LIVE_CREATE_ERR = 2 };
enum sn_live_detach_status {
    SN_LIVE_DETACH_OK = 1,
    SN_LIVE_DETACH_UNK = 2,
    SN_LIVE_DETACH_ERR = 3,
};

/* A parsed request. Which member is set depends on cmd. */
struct sn_live_cmd {
    uint32_t cmd; /* enum sn_live_cmd_id */
    uint32_t version;
    union {
        struct {
            uint64_t viewer_session_id;
            uint32_t major, minor, type;
        } connect;
        struct {
            uint64_t session_id, offset;
            uint32_t seek;
        } attach;
        struct {
            uint64_t stream_id, offset;
            uint32_t len;
        } get_packet;
        uint64_t stream_id;  /* GET_NEXT_INDEX, GET_METADATA */
        uint64_t session_id; /* GET_NEW_STREAMS, DETACH_SESSION */
    } u;
};

/* The payload size of cmd's request, or -1 for an unknown command. */
int sn_live_cmd_payload(uint32_t cmd);

/* Parses the request at the start of buf[len]. Returns its total size (header + payload) with
 * *out filled, 0 when buf holds only a part of it (read more), or -EPROTO for an unknown
 * command or a data_size other than the command's. */
int sn_live_cmd_parse(const uint8_t *buf, size_t len, struct sn_live_cmd *out);

/* Encodes c as a viewer would send it into out[SN_LIVE_CMD_HDR + SN_LIVE_CMD_MAX]. Returns the
 * bytes written, or -EINVAL for an unknown command. */
int sn_live_cmd_encode(const struct sn_live_cmd *c, uint8_t *out);

struct sn_live_session_info {
    uint64_t id;
    uint32_t live_timer_us;
    uint32_t clients;
    uint32_t streams;
    const char *hostname; /* cut to 63 bytes */
    const char *name;     /* cut to 254 bytes */
};
void sn_live_put_session(uint8_t out[SN_LIVE_SESSION_LEN], const struct sn_live_session_info *s);

struct sn_live_stream_info {
    uint64_t id;
    uint64_t ctf_trace_id;
    uint32_t metadata_flag; /* 1: the metadata stream */
    const char *path_name;  /* cut to 4095 bytes */
    const char *channel;    /* cut to 254 bytes */
};
void sn_live_put_stream(uint8_t out[SN_LIVE_STREAM_LEN], const struct sn_live_stream_info *s);

/* GET_NEXT_INDEX's answer. Sizes are in bits on the wire, as in a CTF packet context. */
struct sn_live_index {
    uint64_t offset;       /* bytes, in the stream */
    uint64_t packet_size;  /* bits */
    uint64_t content_size; /* bits */
    uint64_t timestamp_begin, timestamp_end;
    uint64_t events_discarded;
    uint64_t stream_id; /* the CTF stream class id */
    uint32_t status;    /* enum sn_live_index_status */
    uint32_t flags;     /* enum sn_live_index_flags */
};
void sn_live_put_index(uint8_t out[SN_LIVE_INDEX_LEN], const struct sn_live_index *ix);
void sn_live_get_index(const uint8_t in[SN_LIVE_INDEX_LEN], struct sn_live_index *ix);

/* CONNECT's answer (the same struct as its request). */
void sn_live_put_connect(uint8_t out[SN_LIVE_CONNECT_LEN], uint64_t viewer_session_id,
                         uint32_t major, uint32_t minor, uint32_t type);

/* Big-endian stores and loads. */
void sn_live_be32(uint8_t *p, uint32_t v);
void sn_live_be64(uint8_t *p, uint64_t v);
uint32_t sn_live_rd32(const uint8_t *p);
uint64_t sn_live_rd64(const uint8_t *p);

#endif
