// A fixed pool of worker threads for the kernels. One parallel region at a
// time: run(fn) calls fn(slot, n_slots) once for every slot 0..n_slots-1
// (n_slots = size()) and returns when all are done. Kernels split their
// work statically by slot, so which thread computes an output never changes
// how that output is reduced; per-slot scratch is used by one thread at a
// time.
//
// Slots are claimed, not assigned: the caller and the workers take the next
// unclaimed slot until none is left, and the caller then waits only for
// slots already being computed. A worker that is asleep or descheduled
// (another process has its core) therefore never stalls a region: the
// caller computes its slot. Without this, one preempted worker cost a whole
// scheduler time slice per region, ~40x slower decode on a busy 2-core
// machine.
//
// Workers spin for a short while before sleeping: a decode step runs a few
// hundred regions of tens of microseconds each, and a condition-variable
// wake-up per region would cost more than the work.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem::kernels {

class ThreadPool {
 public:
  // N_THREADS counts the calling thread; 0 means one per hardware core.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  template <typename Fn>
  void run(Fn&& fn) {
    if (n_threads_ == 1) {
      fn(0, 1);
      return;
    }
    run_erased(&fn, [](void* f, int t, int n) { (*static_cast<Fn*>(f))(t, n); });
  }

  // [begin, end) of N items for THREAD of N_THREADS: contiguous, balanced.
  static void split(int64_t n, int thread, int n_threads, int64_t* begin, int64_t* end) {
    *begin = n * thread / n_threads;
    *end = n * (thread + 1) / n_threads;
  }

  // Runs FN(i) for i in [0, N), split into contiguous ranges across the threads.
  template <typename Fn>
  void for_each(int64_t n, Fn&& fn) {
    run([&](int t, int nt) {
      int64_t b, e;
      split(n, t, nt, &b, &e);
      for (int64_t i = b; i < e; ++i) fn(i);
    });
  }

 private:
  using Invoker = void (*)(void*, int, int);
  void run_erased(void* fn, Invoker invoke);
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  void claim_slots();  // runs unclaimed slots of the current region

  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_slot_{0};  // the next unclaimed slot
  std::atomic<int> done_{0};       // slots finished
  std::atomic<bool> stop_{false};
  void* fn_ = nullptr;
  Invoker invoke_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleeping_{0};
};

}  // namespace tandem::kernels
