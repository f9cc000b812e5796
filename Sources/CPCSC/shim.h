// The part of pcsc-lite's PC/SC API (libpcsclite, Linux) that ukey calls, declared as pcsc-lite's
// own headers declare it on Linux (wintypes.h: DWORD is unsigned long, LONG is long). Its headers
// include each other with <angled> names from /usr/include/PCSC, which only a -I flag reaches, and
// the flags pkg-config gives for it carry -pthread, which SwiftPM refuses; so this shim declares
// the few functions itself. The values are pcsclite.h's; tests check them against a real pcscd.
#ifndef UKEY_CPCSC_SHIM_H
#define UKEY_CPCSC_SHIM_H

typedef unsigned long DWORD;
typedef long LONG;
typedef LONG SCARDCONTEXT;
typedef LONG SCARDHANDLE;

typedef struct {
    unsigned long dwProtocol;
    unsigned long cbPciLength;
} SCARD_IO_REQUEST;

#define SCARD_SCOPE_SYSTEM 0x0002
#define SCARD_PROTOCOL_T1 0x0002
#define SCARD_SHARE_SHARED 0x0002
#define SCARD_LEAVE_CARD 0x0000

LONG SCardEstablishContext(DWORD dwScope, const void *pvReserved1, const void *pvReserved2, SCARDCONTEXT *phContext);
LONG SCardReleaseContext(SCARDCONTEXT hContext);
LONG SCardListReaders(SCARDCONTEXT hContext, const char *mszGroups, char *mszReaders, DWORD *pcchReaders);
LONG SCardConnect(SCARDCONTEXT hContext, const char *szReader, DWORD dwShareMode, DWORD dwPreferredProtocols,
                  SCARDHANDLE *phCard, DWORD *pdwActiveProtocol);
LONG SCardDisconnect(SCARDHANDLE hCard, DWORD dwDisposition);
LONG SCardBeginTransaction(SCARDHANDLE hCard);
LONG SCardEndTransaction(SCARDHANDLE hCard, DWORD dwDisposition);
LONG SCardTransmit(SCARDHANDLE hCard, const SCARD_IO_REQUEST *pioSendPci, const unsigned char *pbSendBuffer, DWORD cbSendLength,
                   SCARD_IO_REQUEST *pioRecvPci, unsigned char *pbRecvBuffer, DWORD *pcbRecvLength);

#endif
