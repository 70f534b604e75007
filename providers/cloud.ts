// Renting and returning boxes through the providers' cloud APIs (Lambda Cloud, DataCrunch/Verda).
import { defineProvider } from "../lib/index.ts";
import { cloudTasks } from "./cloud/tasks.ts";

export function cloud() {
  return defineProvider({ name: "cloud", description: "launch, list and terminate GPU boxes (provider:up|down|list)", tasks: cloudTasks });
}
