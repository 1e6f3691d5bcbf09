//! The declarative rule file.
