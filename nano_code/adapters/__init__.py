"""All I/O of nano-code lives here, at the edges of the pure kernel.

What lives here: the urllib3 model client (`model_client`), the tools and their
implementations (`tools`), settings from `.env`, the environment and flags
(`config`), the terminal (`terminal`), and the session recorder and replayer
(`recorder`, `replay`). Each adapter performs what a kernel action asks for
and reports back a kernel event; none of them decides anything the kernel
should decide (retries, approval, truncation, when to stop).

What may not: policy, or parsing of model replies (that is the kernel's
codec). Heavy imports (vcrpy, yaml) stay inside the functions that need them
so the live path starts fast.
"""
