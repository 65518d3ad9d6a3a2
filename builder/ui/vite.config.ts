/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The bundle is committed (the API serves it with only Python installed), so the build must be
// reproducible: content-hashed names, no source maps, nothing that depends on the build machine.
export default defineConfig({
  base: "/builder/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { "/v1": "http://127.0.0.1:8000" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
