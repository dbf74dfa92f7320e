#include "kernels/thread_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tandem::kernels {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// How long an idle worker spins before it sleeps. Long enough to bridge the
// gaps between kernels inside a forward pass, short enough not to burn a
// core while the server is idle.
constexpr auto kSpin = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_erased(void* fn, Invoker invoke) {
  // Every slot of the previous region is done: nobody reads fn_ now. The
  // release store of next_slot_ publishes fn_ to whoever claims a slot.
  fn_ = fn;
  invoke_ = invoke;
  done_.store(0, std::memory_order_relaxed);
  next_slot_.store(0, std::memory_order_release);
  {
    // The lock orders the publication against a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleeping_.load(std::memory_order_acquire) > 0) wake_.notify_all();
  claim_slots();
  // Wait for slots others are computing; yield now and then, in case the
  // thread computing one shares this core.
  for (int spins = 1; done_.load(std::memory_order_acquire) != n_threads_; ++spins) {
    cpu_relax();
    if (spins % 256 == 0) std::this_thread::yield();
  }
}

void ThreadPool::claim_slots() {
  for (;;) {
    const int slot = next_slot_.fetch_add(1, std::memory_order_acq_rel);
    if (slot >= n_threads_) return;
    invoke_(fn_, slot, n_threads_);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker(int) {
  uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t gen;
    int spins = 0;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
      cpu_relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleeping_.fetch_sub(1);
      }
    }
    seen = gen;
    if (stop_.load()) return;
    // Possibly late: the caller may have taken every slot (then this finds
    // none) or even started the next region (then this helps with it: fn_
    // is read only after a slot is claimed).
    claim_slots();
  }
}

}  // namespace tandem::kernels
