// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * System V IPC in use by a parent and its child (t-sysv-ipc):
 *  - segment A (key KEY, 3 pages + 100 bytes, mode 0640): a counter both
 *    increment under the semaphore lock, a magic string, page 1 never
 *    touched, page 2 a pattern, a tail in the partial last page; the child
 *    also attaches it read-only at another address;
 *  - segment B (IPC_PRIVATE), attached by both, then removed (IPC_RMID);
 *  - semaphore set KEY+1: sem 0 a lock (1 free), sems 1 and 2 hold 5, 42;
 *  - message queue KEY+2 with three messages queued (types 1, 2, 7);
 *  - segment C (KEY+3) written and detached, and semaphore set D (KEY+4)
 *    never operated on: not the tree's unless named (kup dump --sysv-ipc).
 * Lines: "IDS shm=A rm=B sem=S msg=Q addr=0x.. child=PID c=C d=D" at start; "C <count> <pid>"
 * after each increment; SIGUSR1 to the parent: "CHECK 1 OK|FAIL why";
 * SIGUSR2 to the parent: the queue drained, "MSG <type> <text>"..., "MSGEND n".
 * Usage: sysvipc KEY_HEX [undo|partial]: with "undo", the child takes and
 * gives back the lock once with SEM_UNDO (it then has undo state); with
 * "partial", the parent attaches segment A once more and unmaps its first
 * page.
 */
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "say.h"

#define PG 4096
#define A_SIZE (3 * PG + 100)
#define MAGIC "kup-sysv-segment-A"
#define RMAGIC "removed-but-attached"

union semun { int val; struct semid_ds *buf; unsigned short *array; };

static volatile sig_atomic_t want_check, want_drain;
static void on_usr1(int s) { want_check = 1; }
static void on_usr2(int s) { want_drain = 1; }

static int shm_a, shm_b, sem, msq, shm_c, sem_d;
static unsigned char *a, *b;

static void sem_op(int num, int op)
{
	struct sembuf sb = { num, op, 0 };

	while (semop(sem, &sb, 1) < 0)
		if (errno != EINTR)
			die("semop %d %d: %s", num, op, strerror(errno));
}

static const char *check(void)
{
	static char why[160];
	unsigned short v[3];
	struct shmid_ds ds;

	if (strcmp((char *)a + 64, MAGIC))
		return "segment A lost its magic";
	for (int i = 0; i < PG; i++)
		if (a[PG + i])
			return "page 1 of segment A is not zero";
	for (int i = 0; i < PG; i++)
		if (a[2 * PG + i] != (unsigned char)(i * 7 + 3))
			return "page 2 of segment A lost its pattern";
	if (strcmp((char *)a + 3 * PG, "tail-data"))
		return "the tail of segment A is lost";
	if (strcmp((char *)b, RMAGIC))
		return "segment B lost its contents";
	if (semctl(sem, 0, GETALL, (union semun){ .array = v }) < 0)
		return "semctl GETALL failed";
	if (v[1] != 5 || v[2] != 42 || v[0] > 1) {
		snprintf(why, sizeof(why), "semaphore values %u %u %u", v[0], v[1], v[2]);
		return why;
	}
	if (shmctl(shm_a, IPC_STAT, &ds) < 0 || ds.shm_segsz != A_SIZE || ds.shm_nattch != 3 ||
	    (ds.shm_perm.mode & 0777) != 0640) {
		snprintf(why, sizeof(why), "segment A: size %zu nattch %lu mode %o",
			 (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_perm.mode);
		return why;
	}
	if (shmctl(shm_b, IPC_STAT, &ds) < 0 || !(ds.shm_perm.mode & 01000) || ds.shm_nattch != 2) {
		snprintf(why, sizeof(why), "segment B: mode %o nattch %lu (removed, 2 expected)",
			 ds.shm_perm.mode, (unsigned long)ds.shm_nattch);
		return why;
	}
	{
		const char *c = shmat(shm_c, NULL, SHM_RDONLY);
		bool good = c != (void *)-1 && !strcmp(c, "unattached-segment");

		if (c != (void *)-1)
			shmdt(c);
		if (!good)
			return "segment C lost its contents";
	}
	{
		struct semid_ds sd;

		if (semctl(sem_d, 0, IPC_STAT, (union semun){ .buf = &sd }) < 0 || sd.sem_nsems != 2)
			return "semaphore set D is gone";
	}
	return NULL;
}

static void drain(void)
{
	struct { long mtype; char text[256]; } m;
	int n = 0;
	ssize_t len;

	while ((len = msgrcv(msq, &m, sizeof(m.text) - 1, 0, IPC_NOWAIT)) >= 0) {
		m.text[len] = 0;
		say("MSG %ld %s", m.mtype, m.text);
		n++;
	}
	say("MSGEND %d %s", n, errno == ENOMSG ? "empty" : strerror(errno));
}

static void loop(bool parent, const unsigned char *ro)
{
	for (;;) {
		uint64_t *counter = (uint64_t *)a;
		uint64_t v;

		sem_op(0, -1);
		v = ++*counter;
		sem_op(0, 1);
		say("C %llu %d", (unsigned long long)v, getpid());
		if (ro && (*(const uint64_t *)ro < v || strcmp((const char *)ro + 64, MAGIC)))
			die("the read-only attachment does not show segment A");
		if (parent && want_check) {
			const char *why = check();

			want_check = 0;
			if (why)
				say("CHECK 1 FAIL %s", why);
			else
				say("CHECK 1 OK");
		}
		if (parent && want_drain) {
			want_drain = 0;
			drain();
		}
		sleep_ms(50);
	}
}

int main(int argc, char **argv)
{
	key_t key;
	pid_t child;

	const char *mode = argc > 2 ? argv[2] : "";

	if (argc < 2)
		die("usage: sysvipc KEY_HEX [undo|partial]");
	key = strtoul(argv[1], NULL, 16);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	shm_a = shmget(key, A_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	shm_b = shmget(IPC_PRIVATE, 2 * PG, IPC_CREAT | 0600);
	sem = semget(key + 1, 3, IPC_CREAT | IPC_EXCL | 0660);
	msq = msgget(key + 2, IPC_CREAT | IPC_EXCL | 0620);
	shm_c = shmget(key + 3, PG, IPC_CREAT | IPC_EXCL | 0604);
	sem_d = semget(key + 4, 2, IPC_CREAT | IPC_EXCL | 0600);
	if (shm_a < 0 || shm_b < 0 || sem < 0 || msq < 0 || shm_c < 0 || sem_d < 0)
		die("cannot create the objects: %s", strerror(errno));
	a = shmat(shm_a, NULL, 0);
	b = shmat(shm_b, NULL, 0);
	if (a == (void *)-1 || b == (void *)-1)
		die("shmat: %s", strerror(errno));
	strcpy((char *)a + 64, MAGIC);
	for (int i = 0; i < PG; i++)
		a[2 * PG + i] = i * 7 + 3;
	strcpy((char *)a + 3 * PG, "tail-data");
	strcpy((char *)b, RMAGIC);
	{
		char *c = shmat(shm_c, NULL, 0);

		if (c == (void *)-1)
			die("shmat C: %s", strerror(errno));
		strcpy(c, "unattached-segment");
		shmdt(c);
	}
	if (semctl(sem, 0, SETALL, (union semun){ .array = (unsigned short[]){ 1, 5, 42 } }) < 0)
		die("SETALL: %s", strerror(errno));
	{
		struct { long mtype; char text[64]; } m[3] = {
			{ 1, "first" }, { 2, "second" }, { 7, "third, a little longer" } };

		for (int i = 0; i < 3; i++)
			if (msgsnd(msq, &m[i], strlen(m[i].text), IPC_NOWAIT) < 0)
				die("msgsnd: %s", strerror(errno));
	}
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		const unsigned char *ro = shmat(shm_a, NULL, SHM_RDONLY);

		if (ro == (void *)-1)
			die("shmat read-only: %s", strerror(errno));
		signal(SIGUSR1, SIG_IGN);
		signal(SIGUSR2, SIG_IGN);
		if (!strcmp(mode, "undo")) {
			struct sembuf sb[2] = { { 0, -1, SEM_UNDO }, { 0, 1, SEM_UNDO } };

			if (semop(sem, &sb[0], 1) < 0 || semop(sem, &sb[1], 1) < 0)
				die("semop SEM_UNDO: %s", strerror(errno));
		}
		loop(false, ro);
	}
	/* both attached: now B goes, as postgres-style code removes a segment
	 * it keeps using */
	sleep_ms(100);
	if (shmctl(shm_b, IPC_RMID, NULL) < 0)
		die("IPC_RMID: %s", strerror(errno));
	if (!strcmp(mode, "partial")) {
		unsigned char *p = shmat(shm_a, NULL, 0);

		if (p == (void *)-1 || munmap(p, PG))
			die("partial attach: %s", strerror(errno));
	}
	say("IDS shm=%d rm=%d sem=%d msg=%d addr=%p child=%d c=%d d=%d", shm_a, shm_b, sem, msq,
	    (void *)a, child, shm_c, sem_d);
	loop(true, NULL);
	return 0;
}
