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

struct _IopsEpollSet
{
  int               epfd;      /* -1 while fds ran out */
  GPtrArray        *members;   /* IopsEpollMember *, in the set */
  GArray           *by_fd;     /* guint: 1 + the member index in members that
                                * registered each number, 0 for none */
  guint32           next_gen;
  IopsEpollEvicted  evicted;
  gpointer          evicted_data;
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
iops_epoll_set_new (IopsEpollEvicted evicted,
                    gpointer         data)
{
  IopsEpollSet *self = g_new0 (IopsEpollSet, 1);

  self->epfd = epoll_create1 (EPOLL_CLOEXEC);
  self->members = g_ptr_array_new ();
  self->by_fd = g_array_new (FALSE, TRUE, sizeof (guint));
  self->next_gen = 1;
  self->evicted = evicted;
  self->evicted_data = data;
  return self;
}

void
iops_epoll_set_free (IopsEpollSet *self)
{
  if (self->epfd >= 0)
    close (self->epfd);
  g_ptr_array_unref (self->members);
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
  return self->members->len;
}

static inline IopsEpollMember *
owner_of (IopsEpollSet *self,
          int           fd)
{
  guint entry = (guint) fd < self->by_fd->len ? g_array_index (self->by_fd, guint, fd) : 0;
  IopsEpollMember *member;

  if (entry == 0 || entry > self->members->len)
    return NULL;
  member = g_ptr_array_index (self->members, entry - 1);
  return member->fd == fd ? member : NULL;
}

/* Indices, not pointers: half the size, as it is as long as the highest fd
 * number. Grows by a quarter for the same reason. */
static void
set_owner (IopsEpollSet    *self,
           int              fd,
           IopsEpollMember *member)
{
  if ((guint) fd >= self->by_fd->len)
    g_array_set_size (self->by_fd, MAX ((guint) fd + 1, self->by_fd->len + self->by_fd->len / 4));
  g_array_index (self->by_fd, guint, fd) = member != NULL ? member->index + 1 : 0;
}

static void
members_remove (IopsEpollSet    *self,
                IopsEpollMember *member)
{
  IopsEpollMember *last = g_ptr_array_index (self->members, self->members->len - 1);

  g_ptr_array_index (self->members, member->index) = last;
  if (last != member && owner_of (self, last->fd) == last)
    g_array_index (self->by_fd, guint, last->fd) = member->index + 1;
  last->index = member->index;
  g_ptr_array_set_size (self->members, self->members->len - 1);
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
      members_remove (self, previous);
      self->evicted (previous, self->evicted_data);
    }
  set_owner (self, fd, member);
  member->fd = fd;
  member->mask = mask;
  member->index = self->members->len;
  g_ptr_array_add (self->members, member);
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
  members_remove (self, member);
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
iops_epoll_set_rebuild (IopsEpollSet     *self,
                        IopsEpollEvicted  refused,
                        gpointer          data)
{
  g_autoptr(GPtrArray) members = g_steal_pointer (&self->members);

  if (self->epfd >= 0)
    close (self->epfd);
  self->epfd = epoll_create1 (EPOLL_CLOEXEC);
  self->members = g_ptr_array_new ();
  g_array_set_size (self->by_fd, 0);

  for (guint i = 0; i < members->len; i++)
    {
      IopsEpollMember *member = g_ptr_array_index (members, i);
      int fd = member->fd;

      member->fd = -1;
      if (iops_epoll_set_add (self, member, fd, member->mask, member->key) != 0)
        {
          member->mask = 0;
          refused (member, data);
        }
    }
}
