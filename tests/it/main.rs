//! Integration tests: the real `casco` binary against temporary stores.
