/* SPDX-License-Identifier: MIT */
/*
 * libdmabroker: the client library of dmabroker.
 *
 * A struct dmabroker is a connection to dmabrokerd (org.dmabroker.Broker1),
 * over the bus and, once dmabroker_open_direct() was called, over a direct
 * peer-to-peer connection that later calls use. A struct dmabroker_buffer is
 * a buffer this client holds.
 *
 * Errors: functions that can fail return 0 (or a positive count) on success
 * and a negative errno on failure. When the daemon refused a call, the errno
 * is the one its named error maps to (e.g. -ENOKEY for
 * org.dmabroker.Error.TokenUnknown) and dmabroker_error_name() /
 * dmabroker_error_message() tell the name and the daemon's message.
 *
 * File descriptors: every fd the library creates is O_CLOEXEC. Who owns an
 * fd is said at each function: "borrowed" means the library keeps owning it
 * and the caller must not close it; "the caller owns" means the caller must
 * close it.
 *
 * Event loops: asynchronous calls complete in dmabroker_process(), which the
 * caller runs when dmabroker_get_fd() is readable; or attach the connection
 * to an sd-event loop with dmabroker_attach_event(). Synchronous calls block
 * until the reply.
 *
 * Threads: a struct dmabroker and its buffers may be used from one thread at
 * a time.
 */
#ifndef DMABROKER_H
#define DMABROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

/* The protocol's names, flags and limits (DMABROKER_USAGE_*, DMABROKER_ACCESS_*, ...), defined once. */
#include "dmabroker-protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dmabroker;
struct dmabroker_buffer;
struct dmabroker_stream;

/** Which bus to find the daemon on. */
enum dmabroker_bus {
	DMABROKER_BUS_SYSTEM = 0,
	DMABROKER_BUS_SESSION = 1,
};

/** Usage flags: how a buffer will be used (Allocate, Import, Attach). */
enum dmabroker_usage_flags {
	DMABROKER_USAGE_CPU_READ_FLAG = DMABROKER_USAGE_CPU_READ,
	DMABROKER_USAGE_CPU_WRITE_FLAG = DMABROKER_USAGE_CPU_WRITE,
	DMABROKER_USAGE_SCANOUT_FLAG = DMABROKER_USAGE_SCANOUT,
	DMABROKER_USAGE_CAPTURE_FLAG = DMABROKER_USAGE_CAPTURE,
	DMABROKER_USAGE_GPU_FLAG = DMABROKER_USAGE_GPU,
	DMABROKER_USAGE_CONTIGUOUS_FLAG = DMABROKER_USAGE_CONTIGUOUS,
};

/*
 * Token flags for dmabroker_buffer_create_token(): DMABROKER_TOKEN_SINGLE_USE.
 * Attach flags: DMABROKER_ATTACH_STATIC, a static attachment pins the buffer
 * (no moves). Both from dmabroker-protocol.h.
 */

/** What to allocate. Zero-initialise it, then set version and the fields. */
struct dmabroker_alloc_desc {
	uint32_t version;            /**< DMABROKER_ALLOC_DESC_VERSION */
	uint32_t width, height;      /**< pixels, 1 to the daemon's max-dimension */
	uint32_t fourcc;             /**< a DRM fourcc, e.g. DRM_FORMAT_NV12 */
	uint32_t usage;              /**< dmabroker_usage_flags */
	const uint64_t *modifiers;   /**< acceptable modifiers; NULL/0 = linear */
	size_t n_modifiers;
	const char *backend;         /**< optional: "heap", "drm:vkms", "udmabuf", "shm", ... */
	const char *device;          /**< optional: a device path, DRM driver or heap name */
	uint32_t flags;              /**< version 2: DMABROKER_ALLOC_FRESH */
};
#define DMABROKER_ALLOC_DESC_VERSION 2u
/**
 * New memory, never a buffer from the daemon's pool ([pool] in the daemon's
 * config). A pooled buffer comes only from the caller's own uid and is not
 * cleared: ask for fresh memory where old contents must not show.
 */
#define DMABROKER_ALLOC_FRESH 1u

/** A plane of a buffer to import. */
struct dmabroker_plane {
	uint64_t offset;
	uint32_t stride;
};

/* ---- connections ---- */

/** Connects to the daemon on a bus. *ret is freed with dmabroker_disconnect(). */
int dmabroker_connect(enum dmabroker_bus bus, struct dmabroker **ret);
/** Connects to the daemon on the bus at a D-Bus address ("unix:path=..."). */
int dmabroker_connect_address(const char *address, struct dmabroker **ret);
/**
 * Opens a direct peer-to-peer connection to the daemon (OpenDirect); every
 * later call of this handle goes over it. The bus connection stays open:
 * the daemon keeps this client while either is open. It also opens the
 * client's access channel (OpenAccessChannel), on which
 * dmabroker_buffer_begin_access(), dmabroker_end_access_oneway(),
 * dmabroker_allocate() and dmabroker_buffer_release() then go as one
 * binary message each: about half the cost of a D-Bus call. The two
 * paths stay in order: a D-Bus call made after a one-way EndAccess or
 * Release on the channel reaches the daemon after them (the library waits
 * for the channel to answer first, one round trip, only when such a
 * message was sent since its last answer).
 * The environment variable DMABROKER_ACCESS_CHANNEL=0 keeps them on D-Bus.
 */
int dmabroker_open_direct(struct dmabroker *b);
/** Whether calls go over a direct connection. */
bool dmabroker_is_direct(const struct dmabroker *b);

/**
 * Which path the per-frame calls took: dmabroker_buffer_begin_access(),
 * dmabroker_end_access_oneway(), dmabroker_allocate() and
 * dmabroker_buffer_release() go on the access channel while it is open, and
 * on D-Bus without it. When the channel cannot be opened or breaks (the
 * daemon closed it, a send on it failed), these calls go on over D-Bus:
 * they still work, at about twice the cost. The library then says so once
 * on stderr (a line starting "libdmabroker: access channel", naming why)
 * and counts it here. DMABROKER_ACCESS_CHANNEL=0 is no failure: no line,
 * no count. Zero-initialise *ret, set its version, then call
 * dmabroker_get_channel_stats(): 0, or -EINVAL for an unknown version.
 */
struct dmabroker_channel_stats {
	uint32_t version;            /**< DMABROKER_CHANNEL_STATS_VERSION */
	bool active;                 /**< the channel is open: those calls go on it */
	uint64_t channel_calls;      /**< those calls sent on the channel */
	uint64_t dbus_calls;         /**< those calls sent on D-Bus (no channel, or a descriptor it cannot carry) */
	uint32_t fallbacks;          /**< how often the channel broke or could not be opened */
	int32_t last_error;          /**< why, the last time: a negative errno; 0 = never */
};
#define DMABROKER_CHANNEL_STATS_VERSION 1u
int dmabroker_get_channel_stats(const struct dmabroker *b, struct dmabroker_channel_stats *ret);
/**
 * Closes the connections and frees b and every buffer still open through it
 * (their fds are closed; the daemon releases them). NULL is accepted.
 * Returns NULL.
 */
struct dmabroker *dmabroker_disconnect(struct dmabroker *b);

/* ---- event loop ---- */

/**
 * An fd to poll for POLLIN (borrowed; owned by b): one epoll fd over every
 * fd of b (the bus, the direct connection, the access channel, the
 * streams' channels).
 */
int dmabroker_get_fd(struct dmabroker *b);
/** Dispatches whatever is pending without blocking: completes async calls. */
int dmabroker_process(struct dmabroker *b);
/**
 * Runs b's connections on an sd-event loop instead (the loop is referenced,
 * not owned); dmabroker_get_fd()/dmabroker_process() are then not used.
 */
int dmabroker_attach_event(struct dmabroker *b, sd_event *event, int priority);

/* ---- errors ---- */

/** The D-Bus error name of the last failed call, or NULL. Borrowed. */
const char *dmabroker_error_name(const struct dmabroker *b);
/** The message of the last failed call, or NULL. Borrowed. */
const char *dmabroker_error_message(const struct dmabroker *b);

/* ---- buffers ---- */

/*
 * Sizes are uint64_t on every ABI. A client holds only buffers it can map:
 * one whose size does not fit its size_t (on a 32-bit client, 4 GiB or
 * more) is refused with -EFBIG and org.dmabroker.Error.TooLarge, never
 * truncated, by dmabroker_allocate() and its asynchronous form (before the
 * call when the format's least size is too large already, otherwise when
 * the daemon answers: the buffer is given back), dmabroker_import() (before
 * the call), dmabroker_open_token() (given back) and a stream's buffers
 * (the stream fails for this party). A buffer a move made that large stays
 * held, and dmabroker_stream_cpu_begin() refuses to map it.
 */

/** Allocates a buffer. *ret is freed with dmabroker_buffer_release(). */
int dmabroker_allocate(struct dmabroker *b, const struct dmabroker_alloc_desc *desc,
		       struct dmabroker_buffer **ret);

/**
 * Called when an asynchronous call completes: error is 0 and buffer the new
 * buffer (the callee owns it from then on), or error < 0 and buffer NULL.
 */
typedef void (*dmabroker_buffer_callback)(struct dmabroker *b, int error,
					  struct dmabroker_buffer *buffer, void *userdata);

/** Allocates without blocking; cb runs from dmabroker_process() or the sd-event loop. */
int dmabroker_allocate_async(struct dmabroker *b, const struct dmabroker_alloc_desc *desc,
			     dmabroker_buffer_callback cb, void *userdata);

/**
 * Registers a dma-buf the caller holds (fd is borrowed: the library keeps a
 * duplicate, the caller still owns and closes fd).
 */
int dmabroker_import(struct dmabroker *b, int fd, uint32_t width, uint32_t height, uint32_t fourcc,
		     uint64_t modifier, const struct dmabroker_plane *planes, unsigned n_planes,
		     uint32_t usage, struct dmabroker_buffer **ret);

/** Opens a buffer shared with this client by a token. */
int dmabroker_open_token(struct dmabroker *b, const char *token, struct dmabroker_buffer **ret);

/**
 * Tells the daemon this client no longer holds buf, closes its fd and
 * frees buf. NULL is accepted. Returns NULL.
 */
struct dmabroker_buffer *dmabroker_buffer_release(struct dmabroker_buffer *buf);

/**
 * Creates a sharing token for buf (flags: DMABROKER_TOKEN_SINGLE_USE;
 * ttl_seconds 0 = the daemon's maximum). *ret_token is the caller's: free().
 */
int dmabroker_buffer_create_token(struct dmabroker_buffer *buf, uint32_t flags, uint32_t ttl_seconds,
				  char **ret_token);
/** Revokes a token this client created. */
int dmabroker_revoke_token(struct dmabroker *b, const char *token);

/**
 * Records that this client uses buf for usage on device; *ret_id names the
 * attachment. With DMABROKER_ATTACH_STATIC the attachment pins the buffer.
 * If the device cannot use the buffer's memory (virtio-gpu imports no
 * foreign dma-buf), the daemon first moves the buffer to memory of that
 * device, content and all: buf's fd is then the new one (get it again with
 * dmabroker_buffer_get_fd()), and every other holder is told through its
 * move handler. -ETXTBSY when a static attachment pins the buffer.
 */
int dmabroker_buffer_attach(struct dmabroker_buffer *buf, uint32_t usage, const char *device,
			    uint32_t flags, uint32_t *ret_id);
int dmabroker_buffer_detach(struct dmabroker_buffer *buf, uint32_t id);

/* ---- access: every touch of a shared buffer is inside a grant ---- */

/*
 * Access modes DMABROKER_ACCESS_READ and DMABROKER_ACCESS_WRITE; the
 * begin-access flag DMABROKER_ACCESS_NONBLOCK fails with -EBUSY instead of
 * waiting for other holders (dmabroker-protocol.h).
 */

/**
 * Asks for access to buf. Blocks until the daemon grants it (other clients
 * may hold the buffer). *ret_acquire_fence is a sync_file the caller owns
 * and must wait for (or hand to a driver) before touching the buffer, or -1
 * when nothing is pending. -EBUSY with DMABROKER_ACCESS_NONBLOCK when held;
 * -EDEADLK when waiting would deadlock (end your grants and retry).
 */
int dmabroker_buffer_begin_access(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags,
				  uint64_t *ret_grant, int *ret_acquire_fence);

/**
 * Completes an asynchronous begin: error 0 with the grant and the acquire
 * fence (the callee owns it; -1 = none), or error < 0.
 */
typedef void (*dmabroker_access_callback)(struct dmabroker *b, int error, uint64_t grant,
					  int acquire_fence, void *userdata);
int dmabroker_buffer_begin_access_async(struct dmabroker_buffer *buf, uint32_t mode, uint32_t flags,
					dmabroker_access_callback cb, void *userdata);

/**
 * Access to n buffers (at most 16) at once, all or nothing: never deadlocks
 * with others, whatever the order. ret_grants gets n grant ids, in order;
 * *ret_acquire_fence one sync_file for all (caller owns; -1 = none).
 */
int dmabroker_begin_access_multi(struct dmabroker *b, unsigned n, struct dmabroker_buffer *const *bufs,
				 const uint32_t *modes, uint32_t flags, uint64_t *ret_grants,
				 int *ret_acquire_fence);

/**
 * Ends a grant. release_fence (borrowed; -1 = none) signals when the work
 * done under the grant is complete; without one the work must be done.
 */
int dmabroker_end_access(struct dmabroker *b, uint64_t grant, int release_fence);
/**
 * Ends a grant without waiting for the daemon: EndAccess goes out as a
 * one-way message (no reply), so a grant costs one round trip, not two.
 * The library checks what it can first (-EINVAL: release_fence is not a
 * sync_file); a refusal the daemon alone can tell (an unknown grant) is
 * not reported back: the daemon logs it. Use it where the grant is known
 * to be live, as on a per-frame path; dmabroker_end_access() otherwise.
 */
int dmabroker_end_access_oneway(struct dmabroker *b, uint64_t grant, int release_fence);

/**
 * CPU access: begin_access, wait up to timeout_ms (-1 = forever) for the
 * acquire fence, then DMA_BUF_IOCTL_SYNC START. -ETIMEDOUT when the fence
 * did not signal in time (the grant is ended again). Map the buffer's fd
 * between cpu_begin and cpu_end.
 */
int dmabroker_buffer_cpu_begin(struct dmabroker_buffer *buf, uint32_t mode, int timeout_ms,
			       uint64_t *ret_grant);
/** DMA_BUF_IOCTL_SYNC END, then end_access without a fence. */
int dmabroker_buffer_cpu_end(struct dmabroker_buffer *buf, uint64_t grant);

/* ---- fences (sync_file fds) ---- */

/** Waits up to timeout_ms (-1 = forever): 1 signalled, 0 timed out, <0 error. */
int dmabroker_fence_wait(int fence, int timeout_ms);
/** 1 signalled, 0 pending, <0 error; never waits. */
int dmabroker_fence_status(int fence);
/** A new sync_file (the caller owns it) that signals when a and b have (both borrowed). */
int dmabroker_fence_merge(int a, int b);
/**
 * Calls cb once fence (borrowed: a duplicate is watched) signals, from the
 * sd-event loop. *ret_source (may be NULL) lets the caller cancel it with
 * sd_event_source_unref(); otherwise it frees itself after cb.
 */
typedef void (*dmabroker_fence_callback)(int fence, void *userdata);
int dmabroker_fence_add_to_event(sd_event *event, int fence, dmabroker_fence_callback cb, void *userdata,
				 sd_event_source **ret_source);

/**
 * Called when a buffer this client holds was moved to new memory (another
 * client's attachment needed it elsewhere). The library has already
 * replaced buf's fd and planes; the old fd is closed, so re-import the new
 * one (dmabroker_buffer_get_fd()) wherever the old one was imported. fence
 * (the callee owns it; -1 = none) signals when the new memory is ready.
 */
typedef void (*dmabroker_move_callback)(struct dmabroker *b, struct dmabroker_buffer *buf, int fence,
					void *userdata);
/**
 * Sets (or with NULL clears) the move handler of b: the one the listener's
 * moved stands for while the listener has none (dmabroker_set_listener()).
 */
void dmabroker_set_move_handler(struct dmabroker *b, dmabroker_move_callback cb, void *userdata);

/**
 * Every event of a connection, in one struct. Zero-initialise it, set
 * version and the handlers wanted (NULL: not told). They run from
 * dmabroker_process() or the sd-event loop, or, for a restart, from the
 * call that noticed it; userdata is the one given to
 * dmabroker_set_listener().
 */
struct dmabroker_listener {
	uint32_t version;              /**< DMABROKER_LISTENER_VERSION */
	/** A buffer of b moved to new memory: as a dmabroker_move_callback, the callee owning fence. */
	void (*moved)(struct dmabroker *b, struct dmabroker_buffer *buf, int fence, void *userdata);
	/**
	 * A stream of b has news: a frame or a buffer came, or it ended or
	 * failed (a stream's own dmabroker_stream_callback runs as well).
	 */
	void (*stream)(struct dmabroker *b, struct dmabroker_stream *s, void *userdata);
	/** The daemon went away: b is down, calls fail with -ENOTCONN until daemon_restarted. */
	void (*connection_lost)(struct dmabroker *b, void *userdata);
	/** b reconnected to a restarted daemon and reclaimed its buffers. */
	void (*daemon_restarted)(struct dmabroker *b, void *userdata);
};
#define DMABROKER_LISTENER_VERSION 1u
/**
 * Sets b's listener (copied; NULL clears it): 0, or -EINVAL for an
 * unknown version.
 */
int dmabroker_set_listener(struct dmabroker *b, const struct dmabroker_listener *listener, void *userdata);

/* Accessors: valid until the buffer is released. */
uint64_t dmabroker_buffer_get_id(const struct dmabroker_buffer *buf);
/** The buffer's fd (borrowed: owned by buf, closed by dmabroker_buffer_release()). */
int dmabroker_buffer_get_fd(const struct dmabroker_buffer *buf);
/** A new fd of the buffer (O_CLOEXEC); the caller owns it. Negative errno on failure. */
int dmabroker_buffer_dup_fd(const struct dmabroker_buffer *buf);
uint32_t dmabroker_buffer_get_width(const struct dmabroker_buffer *buf);
uint32_t dmabroker_buffer_get_height(const struct dmabroker_buffer *buf);
uint32_t dmabroker_buffer_get_fourcc(const struct dmabroker_buffer *buf);
uint64_t dmabroker_buffer_get_modifier(const struct dmabroker_buffer *buf);
uint64_t dmabroker_buffer_get_size(const struct dmabroker_buffer *buf);
/** Whether the fd is a dma-buf (false only for the shm backend's memfds). */
bool dmabroker_buffer_is_dmabuf(const struct dmabroker_buffer *buf);
/** The backend that allocated it ("heap:system", ...), or "import"/"shared". Borrowed. */
const char *dmabroker_buffer_get_backend(const struct dmabroker_buffer *buf);
unsigned dmabroker_buffer_get_plane_count(const struct dmabroker_buffer *buf);
/** Plane i's offset and stride; -EINVAL when there is no plane i. */
int dmabroker_buffer_get_plane(const struct dmabroker_buffer *buf, unsigned i, uint64_t *offset,
			       uint32_t *stride);

/*
 * Daemon restarts: when dmabrokerd restarts with its fd store (crash or
 * upgrade under systemd), the library notices (a call finds the connection
 * gone, or the bus says the daemon's name changed hands). It never waits
 * for the daemon to come back: it asks the bus once who has the name.
 * When the new daemon is there, the library opens a new direct connection
 * (if it had one) and reclaims every buffer this client holds; buffers,
 * their ids and fds stay as they were. When it is not there yet, b is
 * down until dmabroker_process() (or the sd-event loop) hears the daemon's
 * name taken again and reconnects then. Grants and streams do not survive
 * a restart. What each call does meanwhile:
 *
 *  - calls that wait for a reply (dmabroker_allocate(), _import(),
 *    _open_token(), _buffer_create_token(), _revoke_token(),
 *    _buffer_attach(), _buffer_detach(), _buffer_begin_access(),
 *    _begin_access_multi(), _end_access(), _buffer_cpu_begin() and
 *    _cpu_end(), _stream_create(), _stream_join()): with the daemon back,
 *    reconnect, reclaim, and go once more on the new connection; with the
 *    daemon not back, fail at once with -ENOTCONN, never waiting for it;
 *  - the asynchronous ones (dmabroker_allocate_async(),
 *    _buffer_begin_access_async()): started while b is down, -ENOTCONN at
 *    once; in flight when the connection went, their callback gets an error;
 *  - the one-way ones: dmabroker_end_access_oneway() returns 0 (the grant
 *    ended with the daemon); dmabroker_buffer_release() frees buf (the
 *    daemon drops its restored copy when its restore-grace ends);
 *  - streams end: consumers see -EPIPE, producers StreamEnded (-EPIPE).
 */
/** How many times b reconnected to a restarted daemon. */
unsigned dmabroker_get_reconnect_count(const struct dmabroker *b);

/* ---- streams: buffers cycled between a producer and consumers ---- */

/*
 * A stream is a set of buffers the daemon cycles between one producer and
 * one or more consumers, with fences both ways. Create or join one, wait
 * until it is negotiated (dmabroker_stream_wait_ready()), then per frame:
 *
 *   producer: dmabroker_stream_dequeue() a free buffer (with a release
 *             fence to wait for), write it, dmabroker_stream_queue() it
 *             with a ready fence (or -1 when written already);
 *   consumer: dmabroker_stream_acquire() a frame (with an acquire fence to
 *             wait for), read it, dmabroker_stream_release() it with a
 *             release fence (or -1 when done).
 *
 * Buffer fds arrive once; frames name buffers by index. Frames travel on a
 * direct connection (opened for you) as one-way messages: no round trip.
 * dmabroker_stream_wait() runs the connection until something is there;
 * or run dmabroker_process() from your loop and use the callback.
 */
struct dmabroker_stream;

enum dmabroker_stream_mode {
	DMABROKER_STREAM_FIFO = 0,    /**< every frame to every consumer; a slow one slows the producer */
	DMABROKER_STREAM_MAILBOX = 1, /**< the newest frame replaces one a consumer has not taken yet */
};

/** What a party declares. Zero-initialise, then set version and the fields. */
struct dmabroker_stream_desc {
	uint32_t version;              /**< DMABROKER_STREAM_DESC_VERSION */
	const char *name;              /**< the stream's name: 1-63 of A-Z a-z 0-9 - _ . */
	const char *label;             /**< names this party in errors and lists; NULL: the command */
	uint32_t usage;                /**< dmabroker_usage_flags of this party */
	const uint32_t *formats;       /**< fourccs it takes, preferred first; producer: required */
	size_t n_formats;
	const uint64_t *modifiers;     /**< modifiers it takes; NULL/0 = linear */
	size_t n_modifiers;
	const char *const *devices;    /**< DRM/V4L2 nodes (or DRM driver names) it imports into */
	size_t n_devices;
	/* the producer's */
	enum dmabroker_stream_mode mode;
	uint32_t buffers;              /**< 1-16; 0 = 4 */
	uint32_t width, height;
	uint32_t consumers;            /**< how many consumers to wait for before negotiating */
	/* a consumer's */
	uint32_t max_acquired;         /**< frames it holds at most; 0 = 1 (mailbox) or all (fifo) */
	/* the producer's: who may join besides its own uid and admins (at most 16 each) */
	const uint32_t *allow_uids;
	size_t n_allow_uids;
	const uint32_t *allow_gids;
	size_t n_allow_gids;
	uint32_t flags;                /**< version 2: DMABROKER_STREAM_PRODUCER_UID, DMABROKER_STREAM_NATIVE */
	uint32_t producer_uid;         /**< version 2, a consumer's, with DMABROKER_STREAM_PRODUCER_UID */
};
#define DMABROKER_STREAM_DESC_VERSION 2u
/**
 * A consumer's: join only if the stream's producer runs as producer_uid.
 * Stream names are first come, first served (unless the daemon's config
 * reserves them): with this flag, a stream of that name by any other uid
 * is refused as if there were none (-ENXIO, UnknownStream).
 */
#define DMABROKER_STREAM_PRODUCER_UID 1u
/**
 * Any party's: the devices it lists read only buffers allocated on them,
 * though they may import others (Mesa's kms_swrast, the software GL of a
 * KMS-only device, maps dumb buffers: a foreign dma-buf imports but cannot
 * be read). The buffers are then placed on that device, as for a device
 * that imports no foreign dma-buf at all; a stream whose parties need two
 * such devices fails negotiation, naming both.
 */
#define DMABROKER_STREAM_NATIVE 2u

#define DMABROKER_FRAME_MAX_DAMAGE DMABROKER_STREAM_MAX_DAMAGE

/** A frame (consumer) or a free buffer (producer). */
struct dmabroker_frame {
	unsigned index;                /**< the buffer's index in the stream */
	struct dmabroker_buffer *buffer; /**< borrowed from the stream */
	uint64_t sequence, timestamp_ns; /**< the producer's (consumer side) */
	int fence;                     /**< acquire (consumer) or release (producer) fence; the caller owns it; -1 = none */
	unsigned n_damage;             /**< 0: the whole frame */
	int32_t damage[DMABROKER_FRAME_MAX_DAMAGE][4]; /**< x, y, width, height */
};

/** Creates stream desc->name with the caller as producer. Free with dmabroker_stream_destroy(). */
int dmabroker_stream_create(struct dmabroker *b, const struct dmabroker_stream_desc *desc,
			    struct dmabroker_stream **ret);
/** Joins stream desc->name as a consumer. */
int dmabroker_stream_join(struct dmabroker *b, const struct dmabroker_stream_desc *desc,
			  struct dmabroker_stream **ret);
/**
 * Waits up to timeout_ms (-1 = forever) until the stream is negotiated and
 * its buffers are here: 0, -ETIMEDOUT, or the daemon's refusal (-EPROTO for
 * NegotiationFailed: dmabroker_error_message() says which party refused what).
 */
int dmabroker_stream_wait_ready(struct dmabroker_stream *s, int timeout_ms);
/** Leaves the stream and frees s (its buffers too). Returns NULL. */
struct dmabroker_stream *dmabroker_stream_destroy(struct dmabroker_stream *s);

/**
 * Producer: takes a free buffer. frame->fence is its release fence: wait
 * for it before writing. -EAGAIN when none is free (every buffer is with
 * the consumers: wait), or the error a one-way call got.
 */
int dmabroker_stream_dequeue(struct dmabroker_stream *s, struct dmabroker_frame *frame);
/**
 * Producer: hands buffer index to the consumers. ready_fence (borrowed; -1
 * = written already) signals when the content is complete. damage: n
 * rectangles (x, y, w, h), or NULL/0 for the whole frame. No round trip.
 */
int dmabroker_stream_queue(struct dmabroker_stream *s, unsigned index, int ready_fence, uint64_t sequence,
			   uint64_t timestamp_ns, const int32_t (*damage)[4], unsigned n_damage);
/**
 * Consumer: takes the next frame. frame->fence is its acquire fence: wait
 * for it (or hand it to a driver) before reading. -EAGAIN when none is
 * there yet; -EPIPE when the producer left and no frame is left.
 */
int dmabroker_stream_acquire(struct dmabroker_stream *s, struct dmabroker_frame *frame);
/** Consumer: done with buffer index once release_fence (borrowed; -1 = done now) signals. */
int dmabroker_stream_release(struct dmabroker_stream *s, unsigned index, int release_fence);
/**
 * Runs the connection up to timeout_ms (-1 = forever) until dequeue or
 * acquire would not return -EAGAIN: 1 then, 0 on timeout, <0 on error.
 */
int dmabroker_stream_wait(struct dmabroker_stream *s, int timeout_ms);
/**
 * Multi-buffer acquisition across streams of one connection: takes from
 * each of the n streams (at most 16) what dequeue (producer) or acquire
 * (consumer) would, all or nothing. A stage that reads one stream and
 * writes another thus never holds an output buffer while it waits for an
 * input frame, or the other way round. -EAGAIN (nothing taken) when one of
 * them has nothing yet; -EPIPE when a consumed stream ended.
 */
int dmabroker_streams_take(unsigned n, struct dmabroker_stream *const *streams, struct dmabroker_frame *frames);
/** Runs the connection up to timeout_ms until dmabroker_streams_take() would succeed: 1, 0 on timeout, <0. */
int dmabroker_streams_wait(unsigned n, struct dmabroker_stream *const *streams, int timeout_ms);
/** Called from dmabroker_process() when a frame or buffer arrives, or the stream ends or fails. */
typedef void (*dmabroker_stream_callback)(struct dmabroker_stream *s, void *userdata);
void dmabroker_stream_set_callback(struct dmabroker_stream *s, dmabroker_stream_callback cb, void *userdata);

/**
 * CPU access to buffer index: waits up to timeout_ms for fence (borrowed;
 * -1 = none), then DMA_BUF_IOCTL_SYNC START for mode (DMABROKER_ACCESS_*).
 * *ret_map: the buffer mapped (kept until the stream is destroyed).
 * -ETIMEDOUT when the fence did not signal in time.
 */
int dmabroker_stream_cpu_begin(struct dmabroker_stream *s, unsigned index, uint32_t mode, int fence,
			       int timeout_ms, void **ret_map);
/** DMA_BUF_IOCTL_SYNC END of cpu_begin. */
int dmabroker_stream_cpu_end(struct dmabroker_stream *s, unsigned index);

/* Stream accessors; the negotiated values are 0/NULL until it is ready. */
uint64_t dmabroker_stream_get_id(const struct dmabroker_stream *s);
bool dmabroker_stream_is_ready(const struct dmabroker_stream *s);
/** Whether the producer left (consumer side). */
bool dmabroker_stream_has_ended(const struct dmabroker_stream *s);
uint32_t dmabroker_stream_get_width(const struct dmabroker_stream *s);
uint32_t dmabroker_stream_get_height(const struct dmabroker_stream *s);
uint32_t dmabroker_stream_get_fourcc(const struct dmabroker_stream *s);
uint64_t dmabroker_stream_get_modifier(const struct dmabroker_stream *s);
/** Where the buffers are ("heap:system", "drm:virtio_gpu", ...). Borrowed. */
const char *dmabroker_stream_get_backend(const struct dmabroker_stream *s);
enum dmabroker_stream_mode dmabroker_stream_get_mode(const struct dmabroker_stream *s);
unsigned dmabroker_stream_get_buffer_count(const struct dmabroker_stream *s);
/** Buffer index (borrowed from the stream), NULL if there is none. */
struct dmabroker_buffer *dmabroker_stream_get_buffer(const struct dmabroker_stream *s, unsigned index);

#ifdef __cplusplus
}
#endif

#endif
