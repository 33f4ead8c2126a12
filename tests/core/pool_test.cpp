#include "vigil/core/pool.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "vigil/core/frame.h"

namespace vigil {
namespace {

TEST(PoolTest, ReleasedObjectIsReused) {
  Pool<int> pool;
  const int* first = nullptr;
  {
    Ref<int> a = pool.acquire();
    first = a.get();
    EXPECT_EQ(pool.outstanding(), 1u);
  }
  EXPECT_EQ(pool.outstanding(), 0u);
  Ref<int> b = pool.acquire();
  EXPECT_EQ(b.get(), first);
  EXPECT_EQ(pool.created(), 1u);
}

TEST(PoolTest, CopiesShareOneObjectUntilLastRefDrops) {
  int released = 0;
  Pool<int> pool(Pool<int>::kUnbounded, [&](int&) { ++released; });
  Ref<int> a = pool.acquire();
  {
    Ref<int> b = a;
    Ref<int> c = b;
    EXPECT_EQ(a.use_count(), 3u);
  }
  EXPECT_EQ(released, 0);
  a.reset();
  EXPECT_EQ(released, 1);
  EXPECT_EQ(pool.outstanding(), 0u);
}

TEST(PoolTest, BoundedPoolReturnsEmptyWhenExhausted) {
  Pool<int> pool(2);
  Ref<int> a = pool.acquire();
  Ref<int> b = pool.acquire();
  EXPECT_FALSE(pool.acquire());
  b.reset();
  EXPECT_TRUE(pool.acquire());
}

TEST(PoolTest, RefMayOutliveItsPool) {
  Ref<int> survivor;
  {
    Pool<int> pool;
    survivor = pool.acquire();
    *survivor.mutable_get() = 42;
  }
  EXPECT_EQ(*survivor, 42);
  survivor.reset();  // deletes the slot; ASan reports a leak or use-after-free otherwise
}

TEST(PoolTest, ConcurrentAcquireAndReleaseReturnEverything) {
  auto pool = make_frame_pool();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        FrameRef f = pool->acquire();
        FrameRef shared = f;
        std::thread([copy = shared] { (void)copy->seq; }).join();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(pool->outstanding(), 0u);
  EXPECT_LE(pool->created(), 8u);
}

TEST(FramePoolTest, ReleaseClearsStorageAndCamera) {
  auto pool = make_frame_pool();
  {
    FrameRef f = pool->acquire();
    f.mutable_get()->camera = std::make_shared<const std::string>("lobby");
    f.mutable_get()->storage = std::make_unique<ByteStorage>();
    f.mutable_get()->image = static_cast<ByteStorage&>(*f->storage).allocate(PixelFormat::yuv420p, 64, 48);
  }
  FrameRef again = pool->acquire();
  EXPECT_FALSE(again->camera);
  EXPECT_TRUE(again->image.empty());
  EXPECT_TRUE(again->storage);  // the buffer is kept for reuse
}

}  // namespace
}  // namespace vigil
