// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html):
// which mutex guards which field, which functions need it held or must not hold it. Clang
// checks them with -Wthread-safety (the ThreadSafety ctest compiles the annotated modules so,
// as errors); other compilers see nothing.
//
//   Mutex mu_;
//   int count_ GUARDED_BY(mu_) = 0;         // read or written only with mu_ held
//   void grow() REQUIRES(mu_);              // callers hold mu_
//   void flush() EXCLUDES(mu_);             // callers must not hold mu_ (it takes it)
#pragma once

#if defined(__clang__)
#define VIGIL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define VIGIL_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) VIGIL_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY VIGIL_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) VIGIL_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) VIGIL_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) VIGIL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) VIGIL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) VIGIL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) VIGIL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) VIGIL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) VIGIL_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) VIGIL_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS VIGIL_THREAD_ANNOTATION(no_thread_safety_analysis)
