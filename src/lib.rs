//! terraform-provider-hyops: a Terraform/OpenTofu provider (plugin protocol 5) whose resource
//! `hyops_vyos_image` builds one canonical VyOS disk image from a pinned ISO, publishes it to object
//! storage and exposes the artifact contract.
//!
//! Layers, top to bottom (each knows only the ones below it):
//! - [`plugin`]: go-plugin transport (handshake, AutoMTLS, health/broker/stdio/controller, logging).
//! - [`provider`]: the tfplugin5 provider service: schemas, validation, plan rules, resources.
//! - [`tfplugin5`]: generated protocol code and conversions; [`cty`]: values, types and codecs.
//! - [`runner`]: builds on a dedicated runner over SSH (ships this binary, runs the operator CLI
//!   there); beside [`cli`], above the engine.
//! - [`engine`]: build-and-publish over typed specs; knows nothing about Terraform.
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod cty;
pub mod engine;
pub mod plugin;
pub mod provider;
pub mod runner;
pub mod tfplugin5;
