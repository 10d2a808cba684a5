#!/usr/bin/python3
# nft.py 'COMMANDS': runs nftables commands through libnftables (the
# testbed hosts have the library but no nft binary). For tests that drop
# RoCE (UDP 4791) between hosts for a while.
import ctypes
import sys

lib = ctypes.CDLL("libnftables.so.1")
lib.nft_ctx_new.restype = ctypes.c_void_p
lib.nft_ctx_new.argtypes = [ctypes.c_uint]
lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
ctx = lib.nft_ctx_new(0)
sys.exit(1 if lib.nft_run_cmd_from_buffer(ctx, sys.argv[1].encode()) else 0)
