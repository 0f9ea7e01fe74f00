/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum on Sonde's binary
 * frames and store records. crc32c("123456789") = 0xE3069283.
 */
#ifndef SN_CORE_CRC32C_H
#define SN_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over buf[0..len); start with crc = 0. Thread-safe. */
uint32_t sn_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
