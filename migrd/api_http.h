/* SPDX-License-Identifier: MIT */
/*
 * The JSON API over HTTP, for schedulers (config http_listen): `POST /api`
 * with one request as the body, its reply as the response, QMP shapes as
 * on the unix socket but no negotiation and no events (poll
 * query-migrate). Every request must carry `Authorization: Bearer TOKEN`,
 * TOKEN being the content of http_token_file.
 */
#ifndef MIGRD_API_HTTP_H
#define MIGRD_API_HTTP_H

struct migrd;

/* Takes fd; serves one HTTP exchange on a detached thread. */
int migrd_http_serve(struct migrd *d, int fd);

#endif
