//! Small, dependency-free helpers shared by layers that must not know each other (the provider
//! validates with them, the engine applies them). Nothing here knows Terraform or VyOS.

pub mod go_duration;
