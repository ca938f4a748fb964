/* SPDX-License-Identifier: MIT */
/*
 * dmabrokerd: the dmabroker daemon. Start-up, command line, signals and
 * readiness; the bus objects live in their own files.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <sys/resource.h>

#include "broker.h"
#include "bus.h"
#include "buildconf.h"
#include "config.h"
#include "errors-sdbus.h"
#include "fdstore.h"
#include "log.h"
#include "notify.h"
#include "quota.h"
#include "worker.h"

enum bus_kind { BUS_SYSTEM, BUS_SESSION };

static const char usage_text[] =
	"Usage: dmabrokerd [OPTION]...\n"
	"\n"
	"The dmabroker daemon: allocates dma-buf buffers and orders every access to\n"
	"them with kernel fences, for display, camera and GPU clients, over D-Bus\n"
	"as " DMABROKER_BUS_NAME ".\n"
	"\n"
	"Options:\n"
	"  --system            serve on the system bus (the default)\n"
	"  --session           serve on the session bus\n"
	"  --config=FILE       read FILE instead of " CONFIG_DEFAULT_PATH "\n"
	"                      (the default file may be missing; a given one may not)\n"
	"  --log-level=LEVEL   err, warning, notice, info (default) or debug;\n"
	"                      overrides [daemon] log-level\n"
	"  --fd-store          keep every buffer in the service manager's fd store and\n"
	"                      take them back at start (overrides [daemon] fd-store),\n"
	"                      so that a restart loses no buffer\n"
	"  -h, --help          print this help and exit\n"
	"  --version           print the version and exit\n"
	"\n"
	"Under systemd (Type=notify) it reports readiness once its name is owned,\n"
	"and sends WATCHDOG=1 every quarter of $WATCHDOG_USEC (WatchdogSec=).\n"
	"It stops cleanly on SIGTERM or SIGINT.\n"
#if DMABROKER_TEST_HOOKS
	"This is a test build (-Dtest-hooks=true): SIGUSR2 wedges its event loop.\n"
#endif
	"\n"
	"Exit status: 0 after a clean stop, 1 on a start-up error, 2 on bad usage.\n";

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("received %s, stopping", strsignal((int)si->ssi_signo));
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

#if DMABROKER_TEST_HOOKS
/*
 * Test builds only (meson -Dtest-hooks=true, off by default): SIGUSR2 wedges
 * the event loop for good, as a callback that never returns would, so that
 * the watchdog tests see WATCHDOG=1 stop and the service manager restart the
 * daemon. SIGTERM is no longer read either (it is blocked, for the signalfd);
 * SIGABRT, the watchdog's signal, and SIGKILL end the process. Only root and
 * the daemon's own user may send it a signal, never a client.
 */
static int on_wedge(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_warning("received SIGUSR2: wedging the event loop on purpose (a test build)");
	for (;;)
		pause();
	return 0; /* not reached */
}
#endif

/*
 * Allocations of 128 KiB and more get their own mapping, unmapped when
 * freed; glibc's default threshold grows with every such free, and the
 * heap then keeps large freed blocks at its high-water mark.
 */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

/*
 * Every buffer costs the daemon one fd: take all the fds we may, and set
 * the fd budget ([limits] max-fds) within them, so that clients run into a
 * LimitReached error before the daemon runs out of fds for everyone.
 */
static void raise_fd_limit(struct config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 1024;
	else if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	cfg->max_fds = fd_budget_limit(cfg, (uint64_t)rl.rlim_cur);
	log_debug("fd limit %llu: max-fds = %llu", (unsigned long long)rl.rlim_cur, (unsigned long long)cfg->max_fds);
}

static int run(enum bus_kind kind, struct config *cfg)
{
	struct broker broker;
	sd_event *event = NULL;
	sd_bus *bus = NULL;
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
#if DMABROKER_TEST_HOOKS
	sigaddset(&mask, SIGUSR2);
#endif
	sigprocmask(SIG_BLOCK, &mask, NULL);
	raise_fd_limit(cfg);
	tune_malloc();

	r = sd_event_default(&event);
	if (r < 0) {
		log_error("cannot create the event loop: %s", strerror(-r));
		config_free(cfg);
		return 1;
	}
	sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
	sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);
#if DMABROKER_TEST_HOOKS
	sd_event_add_signal(event, NULL, SIGUSR2, on_wedge, NULL);
#endif
	sd_bus_error_add_map(dmabroker_error_map);
	broker_init(&broker, event, cfg); /* takes cfg over */
	r = notify_new(event, NULL, NOTIFY_MAX_QUEUED, &broker.notify);
	if (r < 0)
		log_warning("cannot talk to the service manager at $NOTIFY_SOCKET: %s", strerror(-r));
	r = workers_new(event, workers_for_cpus(), &broker.workers);
	if (r < 0)
		log_warning("cannot start worker threads (%s): allocations run in the event loop", strerror(-r));
	broker.fd_store = broker.config.fd_store;
	if (broker.fd_store)
		fdstore_restore(&broker);

	r = kind == BUS_SESSION ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
	if (r < 0) {
		log_error("cannot connect to the %s bus: %s", kind == BUS_SESSION ? "session" : "system",
			  strerror(-r));
		goto out;
	}
	r = bus_attach(&broker, bus);
	if (r < 0) {
		log_error("cannot serve %s: %s", DMABROKER_OBJECT_PATH, strerror(-r));
		goto out;
	}
	r = sd_bus_request_name(bus, DMABROKER_BUS_NAME, 0);
	if (r < 0) {
		log_error("cannot own the name %s on the %s bus: %s%s", DMABROKER_BUS_NAME,
			  kind == BUS_SESSION ? "session" : "system", strerror(-r),
			  r == -EEXIST ? " (another dmabrokerd runs)" :
			  r == -EACCES ? " (install the bus policy, or use --session)" : "");
		goto out;
	}

	log_info("dmabrokerd %s ready on the %s bus as %s", DMABROKER_VERSION,
		 kind == BUS_SESSION ? "session" : "system", DMABROKER_BUS_NAME);
	notify_send(broker.notify, "READY=1\nSTATUS=serving " DMABROKER_BUS_NAME, -1);
	{
		uint64_t period;
		r = notify_watchdog_start(broker.notify, event, &period);
		if (r < 0)
			log_warning("no watchdog: cannot send WATCHDOG=1 for $WATCHDOG_USEC=%s: %s",
				    getenv("WATCHDOG_USEC"), strerror(-r));
		else if (r > 0)
			log_info("watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)(period / 1000));
	}
	r = sd_event_loop(event);
	notify_send(broker.notify, "STOPPING=1", -1);
out:
	bus_stop(&broker);
	broker_finish(&broker); /* leaves the fd store as it is */
	bus_free(&broker);
	/* what the service manager has not read yet, fd store messages first: a bounded wait, the loop is over */
	notify_flush(broker.notify, 5 * 1000000u);
	broker.notify = notify_free(broker.notify);
	config_free(&broker.config);
	sd_bus_unref(bus);
	sd_event_unref(event);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	enum { OPT_SYSTEM = 256, OPT_SESSION, OPT_LOG_LEVEL, OPT_VERSION, OPT_CONFIG, OPT_FD_STORE };
	static const struct option options[] = {
		{ "system", no_argument, NULL, OPT_SYSTEM },
		{ "session", no_argument, NULL, OPT_SESSION },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "fd-store", no_argument, NULL, OPT_FD_STORE },
		{ 0 },
	};
	enum bus_kind kind = BUS_SYSTEM;
	const char *config_path = NULL;
	struct config cfg;
	char *error = NULL;
	int c, level = -1;
	bool fd_store = false;

	log_open();
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SYSTEM:
			kind = BUS_SYSTEM;
			break;
		case OPT_SESSION:
			kind = BUS_SESSION;
			break;
		case OPT_LOG_LEVEL:
			level = log_level_from_string(optarg);
			if (level < 0) {
				fprintf(stderr, "dmabrokerd: unknown log level '%s' "
					"(one of err, warning, notice, info, debug)\n", optarg);
				return 2;
			}
			break;
		case OPT_CONFIG:
			config_path = optarg;
			break;
		case OPT_FD_STORE:
			fd_store = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			puts("dmabrokerd " DMABROKER_VERSION);
			return 0;
		default:
			fputs("Try 'dmabrokerd --help' for more information.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dmabrokerd: unexpected argument '%s'\n"
			"Try 'dmabrokerd --help' for more information.\n", argv[optind]);
		return 2;
	}
	config_init(&cfg);
	if (config_load(&cfg, config_path ? config_path : CONFIG_DEFAULT_PATH, config_path != NULL, &error) < 0 ||
	    config_resolve(&cfg, &error) < 0) {
		log_error("bad configuration, not starting: %s", error ? error : "out of memory");
		free(error);
		config_free(&cfg);
		return 1;
	}
	log_set_level(level >= 0 ? level : cfg.log_level);
	if (fd_store)
		cfg.fd_store = true;
	return run(kind, &cfg);
}
