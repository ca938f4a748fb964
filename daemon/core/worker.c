/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "worker.h"

struct workers {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct work *queue, **queue_tail;       /* waiting to run, oldest first */
	struct work *finished, **finished_tail; /* run, waiting for done() */
	bool stopping;
	int efd;                                /* counts finished jobs for the loop */
	sd_event_source *io;
	unsigned n_threads;
	pthread_t threads[];
};

static struct work *pop(struct work **head, struct work ***tail)
{
	struct work *w = *head;
	if (w) {
		*head = w->next;
		if (!*head)
			*tail = head;
		w->next = NULL;
	}
	return w;
}

static void push(struct work **head, struct work ***tail, struct work *w)
{
	w->next = NULL;
	**tail = w;
	*tail = &w->next;
}

static void *thread_main(void *userdata)
{
	struct workers *ws = userdata;
	const uint64_t one = 1;

	pthread_mutex_lock(&ws->lock);
	for (;;) {
		struct work *w;
		while (!ws->stopping && !ws->queue)
			pthread_cond_wait(&ws->wake, &ws->lock);
		if (ws->stopping)
			break;
		w = pop(&ws->queue, &ws->queue_tail);
		pthread_mutex_unlock(&ws->lock);
		w->ops->run(w);
		pthread_mutex_lock(&ws->lock);
		push(&ws->finished, &ws->finished_tail, w);
		/* An eventfd counter does not block below 2^64 - 1. */
		if (write(ws->efd, &one, sizeof(one)) < 0)
			log_warning("workers: cannot wake the loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

/* Completes every finished job, on the loop thread. */
static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct workers *ws = userdata;
	struct work *list, *w;
	uint64_t n;

	if (read(ws->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warning("workers: reading the eventfd: %s", strerror(errno));
	pthread_mutex_lock(&ws->lock);
	list = ws->finished;
	ws->finished = NULL;
	ws->finished_tail = &ws->finished;
	pthread_mutex_unlock(&ws->lock);
	while ((w = list)) {
		list = w->next;
		w->next = NULL;
		w->ops->done(w, false);
	}
	return 0;
}

unsigned workers_for_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	return n < 1 ? 1 : n > WORKERS_DEFAULT ? WORKERS_DEFAULT : (unsigned)n;
}

int workers_new(sd_event *event, unsigned n, struct workers **ret)
{
	struct workers *ws = calloc(1, sizeof(*ws) + n * sizeof(pthread_t));
	int r;

	if (!ws)
		return -ENOMEM;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->wake, NULL);
	ws->queue_tail = &ws->queue;
	ws->finished_tail = &ws->finished;
	ws->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ws->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = sd_event_add_io(event, &ws->io, ws->efd, EPOLLIN, on_finished, ws);
	if (r < 0)
		goto fail;
	for (; ws->n_threads < n; ws->n_threads++) {
		r = -pthread_create(&ws->threads[ws->n_threads], NULL, thread_main, ws);
		if (r < 0)
			goto fail;
	}
	*ret = ws;
	return 0;
fail:
	workers_free(ws);
	return r;
}

void workers_submit(struct workers *ws, struct work *w)
{
	if (!ws) {
		w->ops->run(w);
		w->ops->done(w, false);
		return;
	}
	pthread_mutex_lock(&ws->lock);
	push(&ws->queue, &ws->queue_tail, w);
	pthread_cond_signal(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
}

struct workers *workers_free(struct workers *ws)
{
	struct work *w;

	if (!ws)
		return NULL;
	pthread_mutex_lock(&ws->lock);
	ws->stopping = true;
	pthread_cond_broadcast(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
	for (unsigned i = 0; i < ws->n_threads; i++)
		pthread_join(ws->threads[i], NULL);
	/* The event source goes before its fd. */
	ws->io = sd_event_source_disable_unref(ws->io);
	safe_close(ws->efd);
	/* The daemon stops: nothing in flight is kept. */
	while ((w = pop(&ws->finished, &ws->finished_tail)))
		w->ops->done(w, true);
	while ((w = pop(&ws->queue, &ws->queue_tail)))
		w->ops->done(w, true);
	pthread_cond_destroy(&ws->wake);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
	return NULL;
}
