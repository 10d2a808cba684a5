/* SPDX-License-Identifier: MIT */
/*
 * The channel towards the host. Either a unix socket the agent listens on
 * (process guests, tests; one host connection at a time) or a character
 * device such as a virtio-serial port, which is one byte stream with no
 * connections: a pump thread turns each stretch of host traffic into a
 * socket pair end, so the session code sees a connection either way.
 */
#ifndef GA_CHANNEL_H
#define GA_CHANNEL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/un.h>

#define GA_DEFAULT_CHANNEL "/dev/virtio-ports/org.vmigrate.agent.0"

enum ga_chan_kind {
	GA_CHAN_AUTO,		/* by what the path is */
	GA_CHAN_UNIX,
	GA_CHAN_SERIAL,
};

struct ga_channel {
	enum ga_chan_kind kind;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;		/* unix: listening socket */
	/* serial: the port, the pump's hand-over pipe and stop pipe */
	int port;
	int handoff[2];
	int stop[2];
	pthread_t pump;
	bool pumping;
};

int ga_channel_open(struct ga_channel *ch, const char *path,
		    enum ga_chan_kind kind);
/* The next host session's fd; -EINTR once the agent is stopping. */
int ga_channel_accept(struct ga_channel *ch);
/* A unix channel's listening socket, readable when a second host tries
 * to connect during a session; -1 for a serial channel. */
int ga_channel_extra_fd(const struct ga_channel *ch);
void ga_channel_close(struct ga_channel *ch);

/* serial.c */
int ga_serial_open(struct ga_channel *ch);
int ga_serial_accept(struct ga_channel *ch);
void ga_serial_close(struct ga_channel *ch);

#endif
