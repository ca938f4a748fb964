/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/core/worker.c: jobs run off the loop's thread and are
 * completed on it, all of them, once each; the loop keeps running while a
 * job is busy; what is queued when the workers stop is completed as
 * cancelled; without workers a job runs at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "tap.h"
#include "worker.h"

TAP_DEFINE;

struct job {
	struct work work;
	pthread_t ran_on, done_on;
	bool ran, done, cancelled;
	atomic_bool *gate;              /* run() waits until it is open, if set */
};

static unsigned n_done;

static void job_run(struct work *w)
{
	struct job *j = (struct job *)w;
	j->ran_on = pthread_self();
	while (j->gate && !atomic_load(j->gate))
		usleep(1000);
	j->ran = true;
}

static void job_done(struct work *w, bool cancelled)
{
	struct job *j = (struct job *)w;
	j->done_on = pthread_self();
	j->done = true;
	j->cancelled = cancelled;
	n_done++;
}

static const struct work_ops ops = { .run = job_run, .done = job_done };

static bool step_all_complete_on_the_loop(void)
{
	enum { N = 64 };
	static struct job jobs[N];
	struct workers *ws = NULL;
	sd_event *e = NULL;

	n_done = 0;
	CHECK(sd_event_new(&e) >= 0);
	CHECK(workers_new(e, WORKERS_DEFAULT, &ws) == 0);
	for (unsigned i = 0; i < N; i++) {
		jobs[i] = (struct job){ .work.ops = &ops };
		workers_submit(ws, &jobs[i].work);
	}
	for (int i = 0; i < 100000 && n_done < N; i++)
		CHECK(sd_event_run(e, 100000) >= 0);
	CHECK(n_done == N);
	for (unsigned i = 0; i < N; i++) {
		CHECK(jobs[i].ran && jobs[i].done && !jobs[i].cancelled);
		CHECK(!pthread_equal(jobs[i].ran_on, pthread_self()));
		CHECK(pthread_equal(jobs[i].done_on, pthread_self()));
	}
	ws = workers_free(ws);
	sd_event_unref(e);
	return true;
}

/* One job held busy: the loop still serves a timer meanwhile; then the job completes. */
static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	atomic_store((atomic_bool *)userdata, true);
	return 0;
}

static bool step_loop_runs_while_busy(void)
{
	atomic_bool gate = false;
	struct job j = { .work.ops = &ops, .gate = &gate };
	struct workers *ws = NULL;
	sd_event *e = NULL;

	n_done = 0;
	CHECK(sd_event_new(&e) >= 0);
	CHECK(workers_new(e, 1, &ws) == 0);
	workers_submit(ws, &j.work);
	/* only the loop opens the gate: the job ends only if the loop ran */
	CHECK(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 1000, 0, on_timer, &gate) >= 0);
	for (int i = 0; i < 100000 && !j.done; i++)
		CHECK(sd_event_run(e, 100000) >= 0);
	CHECK(j.ran && j.done && !j.cancelled);
	ws = workers_free(ws);
	sd_event_unref(e);
	return true;
}

static bool step_stop_cancels_the_queue(void)
{
	enum { N = 8 };
	static struct job jobs[N];
	atomic_bool gate = false;
	struct workers *ws = NULL;
	sd_event *e = NULL;

	n_done = 0;
	CHECK(sd_event_new(&e) >= 0);
	CHECK(workers_new(e, 1, &ws) == 0);
	jobs[0] = (struct job){ .work.ops = &ops, .gate = &gate };
	workers_submit(ws, &jobs[0].work);
	for (unsigned i = 1; i < N; i++) {
		jobs[i] = (struct job){ .work.ops = &ops };
		workers_submit(ws, &jobs[i].work);
	}
	atomic_store(&gate, true);
	ws = workers_free(ws); /* waits for the running job */
	CHECK(n_done == N);
	for (unsigned i = 0; i < N; i++)
		CHECK(jobs[i].done && jobs[i].cancelled && pthread_equal(jobs[i].done_on, pthread_self()));
	sd_event_unref(e);
	return true;
}

static bool step_without_workers_inline(void)
{
	struct job j = { .work.ops = &ops };

	n_done = 0;
	workers_submit(NULL, &j.work);
	CHECK(j.ran && j.done && !j.cancelled && n_done == 1);
	CHECK(workers_free(NULL) == NULL);
	return true;
}

int main(void)
{
	tap_plan(4);
	tap_step("every job runs on a worker and completes on the loop", step_all_complete_on_the_loop);
	tap_step("the loop runs while a job is busy", step_loop_runs_while_busy);
	tap_step("stopping completes what is left as cancelled", step_stop_cancels_the_queue);
	tap_step("without workers a job runs at once", step_without_workers_inline);
	return tap_done();
}
