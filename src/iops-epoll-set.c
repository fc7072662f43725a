/* iops-epoll-set.c — one epoll set and the registrations in it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "iops-epoll-set.h"

/* What the set keeps per member is only a key per fd number: the owners
 * know their members, and there is one per watched fd, idle ones included. */
struct _IopsEpollSet
{
  int               epfd;       /* -1 while fds ran out */
  guint             n_members;
  GArray           *by_fd;      /* guint: 1 + the key of the member that
                                 * registered each number, 0 for none */
  guint32           next_gen;
  IopsEpollLookup   lookup;
  IopsEpollEvicted  evicted;
  gpointer          data;
};

static inline GIOCondition
epoll_to_condition (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) |
         ((events & EPOLLOUT) ? G_IO_OUT : 0) |
         ((events & EPOLLERR) ? G_IO_ERR : 0) |
         ((events & EPOLLHUP) ? G_IO_HUP : 0);
}

IopsEpollSet *
iops_epoll_set_new (IopsEpollLookup  lookup,
                    IopsEpollEvicted evicted,
                    gpointer         data)
{
  IopsEpollSet *self = g_new0 (IopsEpollSet, 1);

  self->epfd = epoll_create1 (EPOLL_CLOEXEC);
  self->by_fd = g_array_new (FALSE, TRUE, sizeof (guint));
  self->next_gen = 1;
  self->lookup = lookup;
  self->evicted = evicted;
  self->data = data;
  return self;
}

void
iops_epoll_set_free (IopsEpollSet *self)
{
  if (self->epfd >= 0)
    close (self->epfd);
  g_array_unref (self->by_fd);
  g_free (self);
}

gboolean
iops_epoll_set_usable (IopsEpollSet *self)
{
  if (G_UNLIKELY (self->epfd < 0))
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
  return self->epfd >= 0;
}

int
iops_epoll_set_get_fd (IopsEpollSet *self)
{
  return self->epfd;
}

guint
iops_epoll_set_n_members (IopsEpollSet *self)
{
  return self->n_members;
}

/* The member that registered @fd last, if it still has it. */
static inline IopsEpollMember *
owner_of (IopsEpollSet *self,
          int           fd)
{
  guint entry = (guint) fd < self->by_fd->len ? g_array_index (self->by_fd, guint, fd) : 0;
  IopsEpollMember *member = entry > 0 ? self->lookup (entry - 1, self->data) : NULL;

  return member != NULL && member->fd == fd ? member : NULL;
}

/* Grows by a quarter: it is as long as the highest fd number. */
static void
set_owner (IopsEpollSet    *self,
           int              fd,
           IopsEpollMember *member)
{
  if ((guint) fd >= self->by_fd->len)
    g_array_set_size (self->by_fd, MAX ((guint) fd + 1, self->by_fd->len + self->by_fd->len / 4));
  g_array_index (self->by_fd, guint, fd) = member != NULL ? member->key + 1 : 0;
}

static void
forget_member (IopsEpollSet    *self,
               IopsEpollMember *member)
{
  self->n_members--;
  member->fd = -1;
  member->mask = 0;
  member->gen = 0;
}

static int
ctl (IopsEpollSet    *self,
     int              op,
     IopsEpollMember *member,
     int              fd,
     guint32          mask)
{
  struct epoll_event ev;

  memset (&ev, 0, sizeof ev);
  ev.events = mask;
  ev.data.u64 = ((guint64) member->gen << 32) | member->key;
  return epoll_ctl (self->epfd, op, fd, &ev) == 0 ? 0 : errno;
}

int
iops_epoll_set_add (IopsEpollSet    *self,
                    IopsEpollMember *member,
                    int              fd,
                    guint32          mask,
                    guint            key)
{
  IopsEpollMember *previous;
  int error;

  if (self->epfd < 0)
    return EMFILE;
  member->key = key;
  member->gen = self->next_gen++;
  if ((error = ctl (self, EPOLL_CTL_ADD, member, fd, mask)) != 0)
    {
      member->gen = 0;
      return error;
    }

  /* The kernel took a new (fd, file) pair, so whoever registered this
   * number before registered another file, since closed: its registration
   * is gone (or lingers for a dup'd file, which a rebuild drops). */
  previous = owner_of (self, fd);
  if (previous != NULL)
    {
      forget_member (self, previous);
      self->evicted (previous, self->data);
    }
  set_owner (self, fd, member);
  member->fd = fd;
  member->mask = mask;
  self->n_members++;
  return 0;
}

int
iops_epoll_set_modify (IopsEpollSet    *self,
                       IopsEpollMember *member,
                       guint32          mask)
{
  int error = ctl (self, EPOLL_CTL_MOD, member, member->fd, mask);

  if (error == 0)
    member->mask = mask;
  return error;
}

void
iops_epoll_set_remove (IopsEpollSet    *self,
                       IopsEpollMember *member,
                       gboolean         kernel)
{
  if (member->fd < 0)
    return;
  /* Fails when the fd was closed; a registration the kernel kept for a
   * dup'd file then shows up with an old generation, and a rebuild drops
   * it. */
  if (owner_of (self, member->fd) == member)
    {
      if (kernel)
        epoll_ctl (self->epfd, EPOLL_CTL_DEL, member->fd, NULL);
      set_owner (self, member->fd, NULL);
    }
  forget_member (self, member);
}

guint
iops_epoll_set_wait (IopsEpollSet   *self,
                     IopsEpollEvent *events,
                     guint           max)
{
  struct epoll_event raw[IOPS_EPOLL_SET_MAX_EVENTS];
  int n = epoll_wait (self->epfd, raw, (int) MIN (max, G_N_ELEMENTS (raw)), 0);

  for (int i = 0; i < n; i++)
    events[i] = (IopsEpollEvent) {
      (guint) (raw[i].data.u64 & G_MAXUINT32),
      (guint32) (raw[i].data.u64 >> 32),
      epoll_to_condition (raw[i].events),
    };
  return n > 0 ? (guint) n : 0;
}

void
iops_epoll_set_reset (IopsEpollSet *self)
{
  if (self->epfd >= 0)
    close (self->epfd);
  self->epfd = epoll_create1 (EPOLL_CLOEXEC);
  self->n_members = 0;
  g_array_set_size (self->by_fd, 0);
}
