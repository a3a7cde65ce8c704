// XXH3-64 compiled for AVX2 (this file alone is built with -mavx2, and
// util::hash64 calls it only where the processor has AVX2): the same hash,
// XXH3's result does not depend on its vector code, in a fraction of the
// instructions of the distribution's generic build, which was most of what
// a steady reload of a large module still did per byte.
#if defined(PYHOT_AVX2_HASH) && defined(__AVX2__)
#include <cstddef>
#include <cstdint>

#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

namespace pyhot::util::detail {

std::uint64_t hash64_avx2(const void* data, std::size_t size) { return XXH3_64bits(data, size); }

}  // namespace pyhot::util::detail
#endif
