/*
 * Preloaded in sanitizer runs only (make test-asan): nginx unloads dynamic
 * modules when a process exits, before LeakSanitizer looks, which leaves
 * "<unknown module>" frames in leak reports.  Keeping them mapped gives
 * real stacks, so a leak can be told apart from nginx's own exit-time
 * allocations.
 */

int
dlclose(void *handle)
{
    (void) handle;
    return 0;
}
