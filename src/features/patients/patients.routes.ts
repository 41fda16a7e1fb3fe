import type { Deps } from '../../container.js';
import { crudRoutes } from '../../http/crud-routes.js';
import { Patient, PatientInput, PatientListQuery, PatientPatch } from './patients.schema.js';
import { createPatient, deletePatient, getPatient, listPatients, updatePatient } from './patients.service.js';

export const patientsRoutes = (deps: Deps) =>
  crudRoutes(deps, {
    path: '/v1/patients',
    noun: 'patient',
    listSummary: 'List patients: name prefix, birthDate, identifier filters (a patient sees only itself)',
    schemas: { resource: Patient, input: PatientInput, patch: PatientPatch, query: PatientListQuery },
    service: { create: createPatient, list: listPatients, get: getPatient, update: updatePatient, remove: deletePatient },
  });
