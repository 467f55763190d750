/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The read-only configuration global, set by the loader before load, and CFG(bit) to test one
 * of its PWRU_CFG_* flags. Included once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_CONFIG_H
#define PWRU_CONFIG_H

__attribute__((weak)) const struct pwru_config pwru_cfg = {};

#define CFG(bit) (pwru_cfg.flags & PWRU_CFG_##bit)

#endif
