/* SPDX-License-Identifier: MIT */
/*
 * uinput-keys: a virtual keyboard for the VM tests. Creates it through
 * /dev/uinput, records it in the udev database the way udevd would (the
 * test bed runs no udevd; libinput reads ID_INPUT_* from there), prints its
 * event node, then types each key named on stdin, one per line: a KEY_*
 * name without the prefix (Q, ESC, SPACE, P, TAB, O). Exits at end of input.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/uinput.h>

static const struct {
	const char *name;
	int code;
} keys[] = {
	{ "Q", KEY_Q }, { "ESC", KEY_ESC }, { "SPACE", KEY_SPACE }, { "P", KEY_P }, { "TAB", KEY_TAB }, { "O", KEY_O },
};

static int emit(int fd, int type, int code, int value)
{
	struct input_event ev = { .type = (unsigned short)type, .code = (unsigned short)code, .value = value };
	return write(fd, &ev, sizeof(ev)) == sizeof(ev) ? 0 : -1;
}

int main(void)
{
	struct uinput_setup setup = { .id = { .bustype = BUS_VIRTUAL, .vendor = 0x1d6b, .product = 0x0104 } };
	char sysname[64], path[512], node[300] = "", line[64];
	struct stat st;
	DIR *dir;
	struct dirent *e;
	FILE *db;
	int fd = open("/dev/uinput", O_WRONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "uinput-keys: /dev/uinput: %s\n", strerror(errno));
		return 1;
	}
	ioctl(fd, UI_SET_EVBIT, EV_KEY);
	/* a whole keyboard's keys, so that udev-style classification sees a keyboard */
	for (int k = KEY_ESC; k <= KEY_MICMUTE; k++)
		ioctl(fd, UI_SET_KEYBIT, k);
	snprintf(setup.name, sizeof(setup.name), "dmabroker test keyboard");
	if (ioctl(fd, UI_DEV_SETUP, &setup) < 0 || ioctl(fd, UI_DEV_CREATE) < 0 ||
	    ioctl(fd, UI_GET_SYSNAME(sizeof(sysname)), sysname) < 0) {
		fprintf(stderr, "uinput-keys: creating the device: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "/sys/devices/virtual/input/%s", sysname);
	dir = opendir(path);
	while (dir && (e = readdir(dir)))
		if (strncmp(e->d_name, "event", 5) == 0)
			snprintf(node, sizeof(node), "/dev/input/%s", e->d_name);
	if (dir)
		closedir(dir);
	for (int i = 0; i < 100 && (!*node || stat(node, &st) < 0); i++)
		usleep(20000);
	if (!*node || stat(node, &st) < 0) {
		fprintf(stderr, "uinput-keys: no event node for %s\n", sysname);
		return 1;
	}
	mkdir("/run/udev", 0755);
	mkdir("/run/udev/data", 0755);
	snprintf(path, sizeof(path), "/run/udev/data/c%u:%u", major(st.st_rdev), minor(st.st_rdev));
	db = fopen(path, "we");
	if (!db) {
		fprintf(stderr, "uinput-keys: %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(db, "E:ID_INPUT=1\nE:ID_INPUT_KEY=1\nE:ID_INPUT_KEYBOARD=1\n");
	fclose(db);
	printf("%s\n", node);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int code = -1;
		line[strcspn(line, "\r\n")] = 0;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(line, keys[i].name) == 0)
				code = keys[i].code;
		if (code < 0) {
			fprintf(stderr, "uinput-keys: unknown key '%s'\n", line);
			continue;
		}
		if (emit(fd, EV_KEY, code, 1) < 0 || emit(fd, EV_SYN, SYN_REPORT, 0) < 0 ||
		    emit(fd, EV_KEY, code, 0) < 0 || emit(fd, EV_SYN, SYN_REPORT, 0) < 0) {
			fprintf(stderr, "uinput-keys: write: %s\n", strerror(errno));
			return 1;
		}
		printf("typed %s\n", line);
		fflush(stdout);
	}
	unlink(path);
	ioctl(fd, UI_DEV_DESTROY);
	close(fd);
	return 0;
}
