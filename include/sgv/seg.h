/* sgv/seg.h - the one segment type every layer of sgv speaks.
 *
 * A segment is (address, length), laid out exactly like struct iovec so a
 * list of segments goes to readv/writev/sendmsg/io_uring without conversion.
 * Usable from C99 and C++. */
#ifndef SGV_SEG_H
#define SGV_SEG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sgv_seg {
  void *addr;
  size_t len;
};

#ifdef __cplusplus
}
#endif

#endif /* SGV_SEG_H */
