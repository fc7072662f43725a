/* iops-epoll-set.h — one epoll set and the registrations in it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The kernel registers (fd, open file) pairs; its users only ever name fd
 * numbers. So the set keeps, for each number, the member that registered it
 * last — no member may remove another's registration by number — and tags
 * every registration with a generation, returned with its events. An event
 * of a generation no member has comes from a registration the kernel kept
 * for a closed but dup'd fd: only rebuilding the whole set drops it.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _IopsEpollSet IopsEpollSet;

/* The most events one iops_epoll_set_wait() returns. */
#define IOPS_EPOLL_SET_MAX_EVENTS 256

/* One registration, embedded in its owner, who finds it again by its key. */
typedef struct
{
  int      fd;     /* registered, or -1 when not in the set */
  guint32  mask;   /* EPOLLIN|EPOLLOUT the kernel holds */
  guint32  gen;    /* of the registration */
  guint    key;    /* the owner's, returned with its events */
} IopsEpollMember;

typedef struct
{
  guint        key;
  guint32      gen;
  GIOCondition revents;
} IopsEpollEvent;

/* The owner's: the member of @key (whatever set it is in), or NULL. */
typedef IopsEpollMember *(*IopsEpollLookup) (guint    key,
                                             gpointer data);
/* A member the set let go of without being asked: another member
 * registered its number, which proves its file was closed. */
typedef void (*IopsEpollEvicted) (IopsEpollMember *member,
                                  gpointer         data);

/* Without an fd to spare (EMFILE) the set is not usable; it tries again
 * when asked with iops_epoll_set_usable(). */
IopsEpollSet *iops_epoll_set_new     (IopsEpollLookup   lookup,
                                      IopsEpollEvicted  evicted,
                                      gpointer          data);
/* Closes the epoll fd, which drops every registration of this process. */
void          iops_epoll_set_free    (IopsEpollSet     *self);

gboolean      iops_epoll_set_usable  (IopsEpollSet     *self);
int           iops_epoll_set_get_fd  (IopsEpollSet     *self);
guint         iops_epoll_set_n_members (IopsEpollSet   *self);

/* 0 or the errno of epoll_ctl(): EPERM for files epoll cannot watch,
 * EBADF for a closed fd, EEXIST for a file watched through this set by
 * another member, EINVAL for an fd epoll calls invalid (its own fd). */
int           iops_epoll_set_add     (IopsEpollSet     *self,
                                      IopsEpollMember  *member,
                                      int               fd,
                                      guint32           mask,
                                      guint             key);
/* Sets the mask again — which also asks the kernel whether the number
 * still names the registered file: ENOENT or EBADF if not. */
int           iops_epoll_set_modify  (IopsEpollSet     *self,
                                      IopsEpollMember  *member,
                                      guint32           mask);
/* Takes @member out; @kernel FALSE leaves the kernel's registration, for
 * a set about to be closed (or shared with a parent after fork()). */
void          iops_epoll_set_remove  (IopsEpollSet     *self,
                                      IopsEpollMember  *member,
                                      gboolean          kernel);

/* Takes at most @max (up to IOPS_EPOLL_SET_MAX_EVENTS) ready events,
 * without waiting. */
guint         iops_epoll_set_wait    (IopsEpollSet     *self,
                                      IopsEpollEvent   *events,
                                      guint             max);

/* Re-creates the epoll set, empty: the owner then adds its members again
 * (iops_epoll_set_add() after setting each member's fd to -1). */
void          iops_epoll_set_reset   (IopsEpollSet     *self);

G_END_DECLS
