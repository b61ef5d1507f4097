//! Unit tests of the reply parsers (short, empty, long and garbled replies).
