// Sanitizer runtime defaults for every executable of a sanitizer build: the sanitizer calls these
// at start-up. Leaks are errors, the first report ends the process, and the suppression files
// beside this one (each entry says why it exists) name only third-party code.
#define KVMT_SANITIZER_FILE(name) "suppressions=" KVMT_SANITIZER_DIR "/" name

extern "C" {

const char* __asan_default_options() {
  return "detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:"
         "check_initialization_order=1:strict_init_order=1";
}

const char* __lsan_default_options() { return KVMT_SANITIZER_FILE("lsan.supp"); }

const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:" KVMT_SANITIZER_FILE("ubsan.supp");
}

// ignore_noninstrumented_modules: what the OpenMP runtime (libomp, with its Archer tool) and
// oneDNN do inside themselves is not instrumented, and their lock set-up shows up as races
// otherwise (Archer's own advice); our code that runs in their threads still is.
const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules="
         "1:" KVMT_SANITIZER_FILE("tsan.supp");
}

}  // extern "C"
