/*
 * Reads placed on the copy (docs/design.md, "Reads on the copy"). OpenSSL delivers the
 * plaintext of every read by one memcpy in its record-layer function ssl_read_bytes
 * (ssl3_read_bytes for TLS, dtls1_read_bytes for DTLS): memcpy(buf, record data, n), with the
 * SSL *, the record type asked for and the peek flag among that function's arguments. A single
 * uprobe on that call (an emulated call rel32) captures what SSL_read, SSL_read_ex, SSL_peek's
 * later read and an SSL BIO deliver, and costs nothing for the reads that find no data, which
 * the entry and return probes of the read functions pay two traps for.
 *
 * The function is found through the method tables TLS_method() and DTLS_method() return (their
 * ssl_read_bytes member); the call is the one of memcpy whose destination the placement analysis
 * proves to be derived from buf on every path, and the probe reads s, type and peek where the
 * same analysis proves their entry values are at that call. Input is untrusted: anything
 * unexpected gives "not placed" with a reason, and the read functions keep their probes.
 */
#pragma once

#include <gelf.h>
#include <stdbool.h>
#include <stdint.h>

#include "elfutil.h"
#include "events.h"

struct sslcopy_probe {
        uint64_t addr; /* virtual address of the call */
        struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX];
};

#define SSLCOPY_PER_FAMILY_MAX 4 /* copies into buf in one ssl_read_bytes (a compiler may
                                    duplicate the loop, one for peek and one without) */

struct sslcopy_result {
        unsigned n;                   /* probes, for all method families (TLS, DTLS) */
        struct sslcopy_probe probe[2 * SSLCOPY_PER_FAMILY_MAX];
        /*
         * The handshake functions (the ssl_accept and ssl_connect members of the same tables:
         * ossl_statem_accept/connect), whose socket I/O ties a TLS object to its socket before
         * its first read, since a read on the copy has no frame of its own.
         */
        unsigned n_handshake;
        uint64_t handshake[4];
        /*
         * read_bytes functions of families other than TLS whose copy could not be placed
         * (OpenSSL 1.1.1's DTLS): entry and return probes on the whole function instead, which
         * report a read of application data that is not a peek, as SSL_read_ex would.
         */
        unsigned n_whole;
        uint64_t whole[2];
        char reason[200];             /* where they are, or why there are none */
        /*
         * Writes on the copy into the record (sslcopy_find_write): the call in TLS's
         * do_ssl3_write that copies a record's plaintext out of the caller's buffer, and the
         * ssl_write_bytes functions of the other families (DTLS), probed whole.
         */
        unsigned n_write;
        struct sslcopy_probe write[SSLCOPY_PER_FAMILY_MAX];
        unsigned n_write_whole;
        uint64_t write_whole[2];
        char write_reason[200];
        /* Found by sslcopy_find for sslcopy_find_write: TLS_method, DTLS_method, memcpy's
         * entries (its PLT entries or its code). */
        uint64_t method_fn[2];
        unsigned n_memcpy;
        uint64_t memcpy_at[8];
};

/*
 * Finds the copy calls in an x86-64 ELF file with OpenSSL 1.1.1 or 3.0/3.1 (TLS_method
 * exported). Fills ret; true when every method family the file has got its probe (then the read
 * functions need no probes of their own).
 */
bool sslcopy_find(Elf *elf, const struct elf_source *src, struct sslcopy_result *ret);

/*
 * Writes on the copy: OpenSSL 1.1.1 to 3.1 build each record in do_ssl3_write (called by
 * ssl3_write_bytes, TLS_method()'s ssl_write_bytes, with its own s and type) and copy its
 * plaintext out of the caller's buffer with one call of a copy routine (WPACKET_memcpy(pkt,
 * src, len), or memcpy): once per record, whatever the retries after WANT_WRITE, never for a
 * record that is not built. The probe sits on that call, where src and len are the record's
 * plaintext, and reads s and type (application data only) where the analysis proves them.
 * After sslcopy_find on the same file: fills the write fields of ret; true when TLS's copy is
 * placed (DTLS, if present, gets its ssl_write_bytes probed whole).
 */
bool sslcopy_find_write(Elf *elf, const struct elf_source *src, struct sslcopy_result *ret);
